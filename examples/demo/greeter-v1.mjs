// Version 1 of a tiny plugin. `slowGreet` takes a while, so calls are in flight when v1 closes.
export function greet(name) {
  return `Hello, ${name}! (v1)`;
}
export function slowGreet(name, ms) {
  return new Promise((resolve) => setTimeout(() => resolve(`Hello, ${name}, eventually. (v1)`), ms));
}
export function onFree() {
  // Runs after the drain, before the worker ends: release what the version holds.
}
