import { readFileSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { EventEmitter } from 'node:events';
import { fixture } from './helpers.js';

/** Copies fixture `source` to `dir/as`, replacing `__KEY__` placeholders. */
export function install(dir: string, source: string, as: string, vars: Record<string, string> = {}): string {
  let text = readFileSync(fixture(source), 'utf8');
  for (const [key, value] of Object.entries(vars)) text = text.replaceAll(`__${key}__`, value);
  const path = join(dir, as);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

/** An editor's atomic save: write a temp file beside it, rename it over the plugin. */
export function atomicSave(dir: string, as: string, text: string): void {
  const tmp = join(dir, `.${as}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, join(dir, as));
}

/** Resolves with the first `event` whose payload passes `accept` (a handshake, not a sleep). */
export function until<T>(emitter: EventEmitter, event: string, accept: (value: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const on = (value: T) => {
      if (!accept(value)) return;
      emitter.off(event, on);
      resolve(value);
    };
    emitter.on(event, on);
  });
}
