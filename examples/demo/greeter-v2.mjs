// Version 2: same API, new behaviour.
export function greet(name) {
  return `Bonjour, ${name} ! (v2)`;
}
export function slowGreet(name, ms) {
  return new Promise((resolve) => setTimeout(() => resolve(`Bonjour, ${name}, enfin. (v2)`), ms));
}
