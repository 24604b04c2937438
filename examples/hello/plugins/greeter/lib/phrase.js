// The greeting word. run.mjs rewrites this file (in a temp copy) to show a folder plugin reloading:
// a folder's version is the hash of every file in it.
export const phrase = 'Hello';
