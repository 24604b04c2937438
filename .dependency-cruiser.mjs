// The layering of src/ and workers/, checked by `npm run lint`. Each layer may import from itself and
// the layers listed before it, never from one listed after it; nothing may import in a circle. The
// isolate entry (workers/) imports only the shared layer, and the host never imports the isolate.
// docs/architecture.md describes the layers; a new file or folder gets its line here.

/** Lowest first: [name, path patterns (relative to the repository root)]. */
const LAYERS = [
  ['shared (both sides of the thread boundary)', ['^src/shared/']],
  [
    'foundation',
    [
      '^src/(validate|time|events|resolve|worker-url|diagnostics|esbuild|code-store|entry|typescript|label|output|children|boot-queue|live|write-atomic)[.]ts$',
    ],
  ],
  ['options and the typed face', ['^src/(options|api|callbacks|inflight)[.]ts$']],
  ['the wire to one worker', ['^src/thread[.]ts$']],
  ['the parts of a version', ['^src/(version-errors|dispatch|close|boot|code-cache|admission)[.]ts$']],
  ['a version', ['^src/plugin[.]ts$']],
  ['loading a version', ['^src/load[.]ts$']],
  [
    'hot swap',
    [
      '^src/(hotswap|hotswap-options|hotswap-events|standby|restart|retire|swap-queue|candidate|canary|rollout|rollout-options)[.]ts$',
    ],
  ],
  ['plugin manager', ['^src/manager/']],
  ['the package barrel (the public face of the core)', ['^src/index[.]ts$']],
  // The fleet is its own package entry (isoplug/fleet): it uses the core only through its public face.
  ['fleet', ['^src/fleet/(?!cli/)']],
  ['the CLI (the core commands and the fleet commands)', ['^src/cli/', '^src/fleet/cli/']],
];

const above = (index) => LAYERS.slice(index + 1).flatMap(([, paths]) => paths);

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    ...LAYERS.slice(0, -1).map(([name, paths], index) => ({
      name: `layer: ${name}`,
      comment: 'A layer imports only from itself and the layers below it (see .dependency-cruiser.mjs).',
      severity: 'error',
      from: { path: paths },
      to: { path: above(index) },
    })),
    {
      name: 'no-circular',
      comment: 'No module reaches itself through its imports.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'isolate-imports-only-shared',
      comment: 'Code that runs in a plugin worker imports only the shared layer (and packages).',
      severity: 'error',
      from: { path: '^workers/' },
      to: { path: '^src/', pathNot: '^src/shared/' },
    },
    {
      name: 'host-never-imports-isolate',
      comment: 'The host side reaches the isolate through the built worker file, never by import.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^workers/' },
    },
    {
      name: 'every-module-in-a-layer',
      comment: 'A module of src/ that no layer names would escape the rules: give it a line in LAYERS.',
      severity: 'error',
      from: { path: '^src/', pathNot: LAYERS.flatMap(([, paths]) => paths) },
      to: {},
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to nothing.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
