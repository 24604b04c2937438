/**
 * Compiling a CommonJS plugin module with the code cache (`LoadMessage.code`). `import()` cannot be given
 * V8's cached data on every Node line; `vm.Script` can, and its `createCachedData()` taken after the load
 * also holds the functions compiled while the module and `onLoad` ran (a faster next load than a cache
 * taken right after compiling). The module runs in the worker's own context, wrapped as Node wraps a
 * CommonJS module, with a `require` resolving from its file.
 */
import * as nodeModule from 'node:module';
import { dirname } from 'node:path';
import { Script, constants } from 'node:vm';
import type { Namespace } from '../src/shared/module-surface.js';
import type { CodeCacheStatus, CodeLoad } from '../src/shared/protocol.js';

/** A module compiled and run: its exports as a namespace, and how the cache served it. */
export interface Compiled {
  readonly ns: Namespace;
  readonly status: Exclude<CodeCacheStatus, 'off'>;
  readonly script: Script;
}

/** The CommonJS wrapper, on the source's first line so line numbers in stack traces stay right. */
const HEAD = '(function (exports, require, module, __filename, __dirname) { ';
const TAIL = '\n})';

/**
 * `import()` inside the module goes to the worker's own loader, as it would in an imported module (Node
 * 20.12+; before that, dynamic import from a cached module fails with Node's own error).
 */
const dynamicImport = (constants as unknown as { USE_MAIN_CONTEXT_DEFAULT_LOADER?: symbol } | undefined)
  ?.USE_MAIN_CONTEXT_DEFAULT_LOADER;

/** A module compiled, and maybe run ahead (`PrepareMessage.run`). */
interface CompiledScript {
  readonly digest: string;
  readonly script: Script;
  readonly status: Exclude<CodeCacheStatus, 'off'>;
  readonly ran?: Compiled;
}

/** A module compiled ahead, and with `run` its top level run (or what it threw). */
export type Prepared = CompiledScript | { readonly digest: string; readonly error: unknown };

/**
 * A module prepared ahead (`Prepare`): compiled, and with `run` its top level run too. Never throws:
 * with `run`, what compiling or running threw is kept for the `Load` of the same bytes; without it, a
 * module that does not compile is left to its `Load`.
 */
export function prepareAhead(code: CodeLoad, run: boolean): Prepared | undefined {
  try {
    const compiled = prepareModule(code);
    return run ? { ...compiled, ran: compileModule(code, compiled) } : compiled;
  } catch (error) {
    return run ? { digest: code.digest, error } : undefined;
  }
}

/** Compiles the module (with the cached data when there is any); runs nothing of it. Throws a SyntaxError. */
export function prepareModule(code: CodeLoad): CompiledScript {
  const source = Buffer.from(code.buffer, 0, code.sourceBytes).toString('utf8');
  // V8 reads the cached data synchronously while compiling: a view of the shared buffer needs no copy.
  const cachedData = code.cacheBytes > 0 ? new Uint8Array(code.buffer, code.sourceBytes, code.cacheBytes) : undefined;
  const script = new Script(HEAD + source + TAIL, {
    filename: code.filename,
    cachedData: cachedData as Buffer | undefined,
    ...(dynamicImport === undefined ? {} : { importModuleDynamically: dynamicImport as never }),
  });
  // A hit only when V8 says it took the data (`false`): data never given to V8 is no hit.
  const status = cachedData === undefined ? 'miss' : script.cachedDataRejected === false ? 'hit' : 'rejected';
  return { digest: code.digest, script, status };
}

/**
 * Runs the module, compiled ahead (`prepared`, when it holds the same bytes) or now. Throws what the
 * module throws.
 */
export function compileModule(code: CodeLoad, prepared?: Prepared): Compiled {
  const same = prepared?.digest === code.digest ? prepared : undefined;
  if (same !== undefined && 'error' in same) throw same.error;
  if (same?.ran !== undefined) return same.ran;
  const { script, status } = same ?? prepareModule(code);
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  const require = nodeModule.createRequire(code.filename);
  const module = {
    exports: {} as unknown,
    id: code.filename,
    filename: code.filename,
    path: dirname(code.filename),
    loaded: false,
    children: [],
    paths: require.resolve.paths('') ?? [],
    require,
  };
  Reflect.apply(wrapper, module.exports, [module.exports, require, module, code.filename, dirname(code.filename)]);
  module.loaded = true;
  return { ns: { default: module.exports }, status, script };
}

/**
 * Right after `Ready` has left: the cached data of everything compiled so far (the module's top level
 * and what `onLoad` ran), for the host to store; after a hit there is nothing new, and `post` gets
 * undefined. In the same turn, so it leaves before any later message is handled (a close right after the
 * load still finds it posted); the first calls wait while V8 serializes (tens of ms for a few MB), once
 * per version the cache did not serve. A failure only means no entry.
 */
export function harvest(compiled: Compiled, post: (data: Uint8Array | undefined) => void): void {
  let data: Uint8Array | undefined;
  if (compiled.status !== 'hit') {
    try {
      data = compiled.script.createCachedData();
    } catch {
      // No entry this time; the next load compiles from source again.
    }
  }
  post(data);
}

/**
 * Node's compile cache (22.1+) for the import that follows: Node verifies and writes its entries itself.
 * A failure (or a `NODE_COMPILE_CACHE` of the user's, which takes precedence) leaves the import as it was.
 */
export function enableCompileCache(dir: string): void {
  const enable = (nodeModule as { enableCompileCache?: (dir: string) => unknown }).enableCompileCache;
  try {
    enable?.(dir);
  } catch {
    // The import compiles from source.
  }
}
