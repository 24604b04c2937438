/** `isoplug build <pluginDir|pluginFile> <outDir>`: bundle one plugin version, or keep rebuilding it. */
import { relative } from 'node:path';
import { parse, strings, UsageError } from './args.js';
import { buildPlugin, watchPlugin, type BuildError, type BuildPluginOptions, type BuiltPlugin } from './build.js';
import type { Io } from './io.js';

export const BUILD_HELP = `Usage: isoplug build <pluginDir|pluginFile> <outDir> [options]

Bundles a plugin (TypeScript or JavaScript) and everything it imports into one ES module,
<outDir>/<name>.<hash8>.mjs, and prints its path. The hash is the output's content hash: the same
sources give the same file, any change a new one, so each version has its own identity and its
own copy of its dependencies.

The entry is the file itself; for a folder, its package.json "exports" ('.') or "main", else the
first of index.js, index.mjs, index.cjs, index.ts, index.mts, index.cts (the rule loadPlugin follows).

Options:
  --name <name>      output base name (default: the package name, else the file or folder name)
  --define <K=V>     replace the identifier K with the expression V; repeatable
                     (e.g. --define '__VERSION__="v2"')
  --external <pkg>   leave a package out of the bundle (resolved at run time); repeatable
  --sourcemap        append an inline source map
  --minify           minify the output
  --json             print {"name","file","hash","bytes"} as one JSON line instead of the path
  --watch            rebuild when a source file changes and print each new file; Ctrl-C stops
  -h, --help         show this help

Exit status: 0 built, 1 the build failed (bad path, build error), 2 bad arguments.

Examples:
  isoplug build plugins/greeter dist/plugins       prints dist/plugins/greeter.1a2b3c4d.mjs
  isoplug build src/handler.ts out --json --define '__VERSION__="v2"'
  isoplug build src/handler.ts out --watch         then loadPlugin() or hs.swap() each new file
`;

const OPTIONS = {
  name: { type: 'string' },
  define: { type: 'string', multiple: true },
  external: { type: 'string', multiple: true },
  sourcemap: { type: 'boolean' },
  minify: { type: 'boolean' },
  json: { type: 'boolean' },
  watch: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function defines(values: string[]): Record<string, string> {
  const define: Record<string, string> = {};
  for (const item of values) {
    const at = item.indexOf('=');
    const key = item.slice(0, at);
    if (at <= 0 || !/^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$/.test(key))
      throw new UsageError(`--define ${JSON.stringify(item)}: expected IDENTIFIER=EXPRESSION`);
    define[key] = item.slice(at + 1);
  }
  return define;
}

function report(built: BuiltPlugin, json: boolean): string {
  if (json) return JSON.stringify({ name: built.name, file: built.file, hash: built.hash, bytes: built.bytes });
  const shown = relative(process.cwd(), built.file);
  return shown.startsWith('..') ? built.file : shown;
}

/** Runs the command; resolves with the exit status. Throws `UsageError` and `BuildError`. */
export async function buildCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, OPTIONS, { min: 2, max: 2, names: ['pluginDir|pluginFile', 'outDir'] });
  if (values.help === true) {
    io.out(BUILD_HELP);
    return 0;
  }
  const [entry = '', outDir = ''] = positionals;
  if (values.name !== undefined && (typeof values.name !== 'string' || values.name.length === 0))
    throw new UsageError('option --name needs a value');
  const options: BuildPluginOptions = {
    define: defines(strings(values.define)),
    external: strings(values.external),
    sourcemap: values.sourcemap === true,
    minify: values.minify === true,
  };
  if (typeof values.name === 'string') options.name = values.name;
  const json = values.json === true;

  if (values.watch !== true) {
    io.out(report(await buildPlugin(entry, outDir, options), json));
    return 0;
  }

  const watcher = await watchPlugin(entry, outDir, {
    ...options,
    onBuild: (built, info) => {
      if (info.changed) io.out(report(built, json));
    },
    onError: (error: BuildError) => io.err(`isoplug build: ${error.message} (${error.code}); still watching`),
  });
  io.err(`isoplug build: watching ${entry} (Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await watcher.close();
  return 0;
}
