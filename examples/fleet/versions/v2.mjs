// The greeter, version 2: rolled out to a share of users, promoted, then rolled back.
export function greet(user) {
  return { version: 'v2', text: `Hi ${user}, welcome back!` };
}
