// A local module imported by hello.ts: `isoplug build` bundles it into the handler's one file.

export interface Greeting {
  readonly text: string;
  readonly name: string;
}

/** Change this text and save while `npm run demo:watch` runs: the next request gets the new one. */
export function greeting(name: string): Greeting {
  return { text: `Hello, ${name}!`, name };
}
