// mailer, version 2: same live functions, new code. run.mjs copies it over mailer.mjs and reloads.
const VERSION = 'v2';

export async function live_send({ to }) {
  return { version: VERSION, text: `Hello ${to}, welcome aboard!` };
}

export async function live_inspect(data) {
  // What arrived is a structured-clone copy: Dates, Maps and Sets stay themselves, a class instance
  // arrives as a plain Object without its methods.
  return { version: VERSION, ...describe(data), greet: typeof data.letter.greet };
}

function describe(data) {
  return {
    to: data.to,
    kinds: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v?.constructor?.name ?? typeof v])),
  };
}
