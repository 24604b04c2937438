// The greeter, version 1: what every host serves first.
export function greet(user) {
  return { version: 'v1', text: `Hello, ${user}.` };
}
