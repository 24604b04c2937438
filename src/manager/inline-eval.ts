/**
 * Evaluating an inline version's bundle (inline-bundle.ts) in the host thread so that a closed version
 * is garbage once nothing refers to it (an ES module imported with a cache-busting query never is).
 *
 * - The bundle is the body of an AsyncFunction: top-level await works as the function's own await, and
 *   Node maps stack traces of code generated from strings that names itself with `//# sourceURL`
 *   (it never maps `vm` code), under `--enable-source-maps` or `process.setSourceMapsEnabled(true)`.
 *   A debugger sees the script with its source map: breakpoints in the sources bind.
 * - The AsyncFunction is made by a one-line trampoline compiled with vm.compileFunction, named after the
 *   entry and allowed the default loader: a computed `import(x)` in the bundle resolves as it would in
 *   the entry (literal ones are bundled).
 * - V8's compilation cache would keep every version's source and top-level code alive long after the
 *   version is gone (it gives way only under memory pressure): it is switched off for this one
 *   synchronous compile.
 * - The sourceURL is one per plugin, not per version: Node keeps a generated script's source map by its
 *   sourceURL for the life of the process, so a name per version would keep every version's map. The
 *   cost: frames of an old version still draining are mapped with the newest version's map.
 */
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import vm from 'node:vm';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Namespace } from '../shared/module-surface.js';
import { BANNER, BUNDLE_PARAMS, hostModule } from './inline-bundle.js';

type Fn = (...args: unknown[]) => unknown;

const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => Fn;
/** One trampoline per plugin entry, compiled once. */
const trampolines = new Map<string, Fn>();
/** When the process runs without the cache already, there is nothing to switch (or to switch back on). */
const toggleCache = ![...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/)].includes(
  '--no-compilation-cache',
);

function trampoline(entry: string): Fn {
  let made = trampolines.get(entry);
  if (made === undefined) {
    made = vm.compileFunction('return new AsyncFunction(...args);', ['AsyncFunction', 'args'], {
      filename: pathToFileURL(entry).href,
      importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    }) as Fn;
    trampolines.set(entry, made);
  }
  return made;
}

/** Compiles `code` (a bundle) as an AsyncFunction with the compilation cache off. Throws a SyntaxError as compiling does. */
export function compileInline(entry: string, code: string): Fn {
  // The last //# sourceURL wins; the sourceMappingURL comment above it still counts.
  const body = `${code.slice(BANNER.length + 1)}\n//# sourceURL=${pathToFileURL(entry).href}?isoplug-inline\n`;
  if (toggleCache) v8.setFlagsFromString('--no-compilation-cache');
  try {
    return trampoline(entry)(AsyncFunction, [...BUNDLE_PARAMS, body]) as Fn;
  } finally {
    if (toggleCache) v8.setFlagsFromString('--compilation-cache');
  }
}

/** Runs a compiled bundle (its top-level code); resolves with the entry's namespace. */
export async function runInline(entry: string, fn: Fn): Promise<Namespace> {
  let ns: Namespace | undefined;
  await fn(
    (exports: Namespace) => (ns = exports),
    (url: string) => hostModule(url),
    createRequire(entry),
    entry,
    dirname(entry),
  );
  // The entry line calls __isoplug_done right after the imports evaluated; it always ran if we got here.
  return ns!;
}
