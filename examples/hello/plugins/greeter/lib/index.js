// A folder plugin: its entry is package.json's "main" (this file); it imports its sibling files.
import { phrase } from './phrase.js';

export function hello(name) {
  return `${phrase}, ${name}!`;
}
