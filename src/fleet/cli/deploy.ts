/** `isoplug publish | rollout | promote | rollback`: each writes at most one revision, in one transaction. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, strings, UsageError } from '../../cli/args.js';
import { buildPlugin } from '../../cli/build.js';
import type { Io } from '../../cli/io.js';
import type { Registry } from '../registry.js';
import type { Deployment } from '../store.js';
import {
  describeDeployment,
  registryFrom,
  short,
  WAIT_EXIT,
  WRITE_HELP,
  WRITE_OPTIONS,
  waitAndReport,
  writeOptions,
} from './common.js';

export const PUBLISH_HELP = `Usage: isoplug publish <pluginDir|pluginFile> --name <name> [options]

Builds the plugin (as isoplug build does) and stores the bundle in the registry under its SHA-256.
With --stable, also writes a revision that makes it the version every host following <name> serves.
Without, it only uploads: roll it out later with isoplug rollout <name> <version>.

Options:
  --name <name>            the deployment (plugin) name
  --stable                 make it the stable version of <name> (a new revision, no canary)
  --sign <keyfile>         sign the bundle with an Ed25519 private key (PEM); hosts with
                           requireSignature load only bundles signed by a key they trust
  --prebuilt               store the file's bytes as they are (e.g. the output of isoplug build)
  --define <K=V>           as isoplug build; repeatable
  --external <pkg>         as isoplug build; repeatable
  --minify                 as isoplug build
${WRITE_HELP}

${WAIT_EXIT}

Examples:
  isoplug publish plugins/greeter --name greeter --stable --wait
  isoplug publish dist/plugins/greeter.1a2b3c4d.mjs --name greeter --prebuilt --sign ci-key.pem
`;

export const ROLLOUT_HELP = `Usage: isoplug rollout <name> <version> --percent <p> [options]

Writes a revision with <version> as the canary beside the stable version, on <p>% of calls. The same
canary at a new percent keeps its sticky-key salt: a key on the canary stays on it as the percent rises.
<version> is a bundle's SHA-256 prefix (8+ hex digits, as publish prints) or r<revision>.

Options:
  --percent <p>            share of calls on the canary, 0 to 100
${WRITE_HELP}

${WAIT_EXIT}
`;

export const PROMOTE_HELP = `Usage: isoplug promote <name> [options]

Writes a revision making the canary the stable version.

Options:
${WRITE_HELP}

${WAIT_EXIT}
`;

export const ROLLBACK_HELP = `Usage: isoplug rollback <name> [--to <version>] [options]

Writes a new revision pointing back (history stays append-only): to <version> when given (a SHA-256
prefix or r<revision>); else, with a canary on, to the stable version alone; else to the stable
version before the current one.

Options:
  --to <version>           the version to go back to
${WRITE_HELP}

${WAIT_EXIT}
`;

async function withRegistry(values: Parameters<typeof registryFrom>[0], run: (r: Registry) => Promise<number>) {
  const registry = await registryFrom(values);
  try {
    return await run(registry);
  } finally {
    await registry.close();
  }
}

function printed(deployment: Deployment | undefined, io: Io, json: boolean): void {
  if (!json && deployment) io.out(`${deployment.name} ${describeDeployment(deployment)}`);
}

function deploymentJson(deployment: Deployment | undefined): Record<string, unknown> {
  return deployment === undefined ? {} : { deployment };
}

export async function publishCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      ...WRITE_OPTIONS,
      name: { type: 'string' },
      stable: { type: 'boolean' },
      sign: { type: 'string' },
      prebuilt: { type: 'boolean' },
      define: { type: 'string', multiple: true },
      external: { type: 'string', multiple: true },
      minify: { type: 'boolean' },
    },
    { min: 1, max: 1, names: ['pluginDir|pluginFile'] },
  );
  if (values.help === true) {
    io.out(PUBLISH_HELP);
    return 0;
  }
  if (typeof values.name !== 'string' || values.name.length === 0) throw new UsageError('option --name is required');
  const name = values.name;
  const write = writeOptions(values);
  const sign = typeof values.sign === 'string' ? await readFile(values.sign, 'utf8') : undefined;
  // The registry first: a database that cannot be reached says so before a build.
  return withRegistry(values, async (registry) => {
    const bytes = await bundleBytes(positionals[0]!, values);
    const result = await registry.publish(bytes, {
      name,
      stable: values.stable === true,
      ...write,
      ...(sign === undefined ? {} : { sign }),
    });
    const json = values.json === true;
    if (!json)
      io.out(
        `published ${name} ${result.version} (${result.size} bytes, ${result.stored ? 'new' : 'already stored'}` +
          `${result.signedBy ? `, signed by ${short(result.signedBy)}` : ''})`,
      );
    printed(result.deployment, io, json);
    if (!json && values.stable === true && result.deployment === undefined)
      io.out(`${name}: ${result.version} is already the stable version; no new revision`);
    const { deployment, ...rest } = result;
    return waitAndReport(registry, deployment, values, io, { name, ...rest, ...deploymentJson(deployment) });
  });
}

/** The bytes to publish: the file as is with --prebuilt, else built by esbuild into a scratch folder. */
async function bundleBytes(entry: string, values: Record<string, unknown>): Promise<Uint8Array> {
  if (values.prebuilt === true) return readFile(entry);
  const define: Record<string, string> = {};
  for (const item of strings(values.define as never)) {
    const at = item.indexOf('=');
    if (at <= 0) throw new UsageError(`--define ${JSON.stringify(item)}: expected IDENTIFIER=EXPRESSION`);
    define[item.slice(0, at)] = item.slice(at + 1);
  }
  const out = await mkdtemp(join(tmpdir(), 'isoplug-publish-'));
  try {
    const built = await buildPlugin(entry, out, {
      define,
      external: strings(values.external as never),
      minify: values.minify === true,
    });
    return await readFile(built.file);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

export async function rolloutCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...WRITE_OPTIONS, percent: { type: 'string' } },
    { min: 2, max: 2, names: ['name', 'version'] },
  );
  if (values.help === true) {
    io.out(ROLLOUT_HELP);
    return 0;
  }
  const percentText = typeof values.percent === 'string' ? values.percent.replace(/%$/, '') : '';
  const percent = Number(percentText);
  if (!/^\d+(\.\d+)?$/.test(percentText) || percent > 100)
    throw new UsageError('option --percent needs a number from 0 to 100');
  const write = writeOptions(values);
  const [name, version] = positionals as [string, string];
  return withRegistry(values, async (registry) => {
    const deployment = await registry.rollout(name, version, { percent, ...write });
    printed(deployment, io, values.json === true);
    return waitAndReport(registry, deployment, values, io, { deployment });
  });
}

export async function promoteCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, WRITE_OPTIONS, { min: 1, max: 1, names: ['name'] });
  if (values.help === true) {
    io.out(PROMOTE_HELP);
    return 0;
  }
  const write = writeOptions(values);
  return withRegistry(values, async (registry) => {
    const deployment = await registry.promote(positionals[0]!, write);
    printed(deployment, io, values.json === true);
    return waitAndReport(registry, deployment, values, io, { deployment });
  });
}

export async function rollbackCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...WRITE_OPTIONS, to: { type: 'string' } },
    { min: 1, max: 1, names: ['name'] },
  );
  if (values.help === true) {
    io.out(ROLLBACK_HELP);
    return 0;
  }
  const write = writeOptions(values);
  const to = typeof values.to === 'string' ? values.to : undefined;
  return withRegistry(values, async (registry) => {
    const deployment = await registry.rollback(positionals[0]!, { ...write, ...(to === undefined ? {} : { to }) });
    printed(deployment, io, values.json === true);
    return waitAndReport(registry, deployment, values, io, { deployment });
  });
}
