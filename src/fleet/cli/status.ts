/** `isoplug status | history | registry init | registry gc`: read the fleet, set the registry up, tidy it. */
import { parse, UsageError, type Parsed } from '../../cli/args.js';
import type { Io } from '../../cli/io.js';
import { databaseFromEnv } from '../pg.js';
import { gcRegistry } from '../gc.js';
import { initRegistry } from '../registry.js';
import { grants } from '../schema.js';
import { DB_HELP, DB_OPTIONS, describeDeployment, hostState, hostTable, integer, registryFrom } from './common.js';

export const STATUS_HELP = `Usage: isoplug status <name> [options]

Prints the latest revision of <name> and every host following it: the revision and version it
serves, whether it refused the latest revision and why, and hosts not seen for three poll
intervals (stale).

Options:
${DB_HELP}

Exit status: 0 printed, 1 the registry could not be read, 2 bad arguments.
`;

export const HISTORY_HELP = `Usage: isoplug history <name> [options]

Prints the revisions of <name>, newest first.

Options:
  --limit <n>              how many (default: 20)
${DB_HELP}
`;

export const REGISTRY_HELP = `Usage: isoplug registry init [options]
       isoplug registry gc [--keep <n>] [--min-age <seconds>] [--dry-run] [options]

Creates the registry's schema in the database, or upgrades it (migrations in one transaction), and two
roles without login: <schema>_publisher (stores bundles, writes revisions, reads host status) and
<schema>_host (reads bundles and revisions, writes only the status rows it owns). Give them to login
roles: CREATE ROLE ci LOGIN PASSWORD '…' IN ROLE isoplug_publisher. Needs a role that may create
schemas and roles.

gc removes bundles no revision names (uploads never deployed, or only named by revisions it deleted),
stored at least --min-age ago; with --keep <n>, first the revisions older than the newest n of each
plugin. One transaction; needs the schema owner's rights (as init does).

Options:
  --publisher-role <name>  init: default <schema>_publisher
  --host-role <name>       init: default <schema>_host
  --no-roles               init: create the schema only, and print the GRANTs to run by hand
  --keep <n>               gc: keep the newest n revisions of each plugin (default: all)
  --min-age <seconds>      gc: spare bundles stored more recently (default: 3600)
  --dry-run                gc: print what would go, delete nothing
${DB_HELP}
`;

export async function statusCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, DB_OPTIONS, { min: 1, max: 1, names: ['name'] });
  if (values.help === true) {
    io.out(STATUS_HELP);
    return 0;
  }
  const name = positionals[0]!;
  const registry = await registryFrom(values);
  try {
    const [latest, hosts] = await Promise.all([registry.latest(name), registry.hosts(name)]);
    if (values.json === true) {
      io.out(
        JSON.stringify({
          name,
          deployment: latest,
          hosts: hosts.map((h) => ({ ...h, shown: hostState(h, latest?.revision) })),
        }),
      );
      return 0;
    }
    io.out(latest ? `${name} ${describeDeployment(latest)}` : `${name}: nothing deployed`);
    if (hosts.length === 0) {
      io.out('no host has reported');
      return 0;
    }
    io.out(hostTable(hosts, latest?.revision));
    const counts = new Map<string, number>();
    for (const host of hosts) {
      const state = hostState(host, latest?.revision);
      counts.set(state, (counts.get(state) ?? 0) + 1);
    }
    io.out(`${hosts.length} hosts: ${[...counts].map(([state, n]) => `${n} ${state}`).join(', ')}`);
    return 0;
  } finally {
    await registry.close();
  }
}

export async function historyCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...DB_OPTIONS, limit: { type: 'string' } },
    { min: 1, max: 1, names: ['name'] },
  );
  if (values.help === true) {
    io.out(HISTORY_HELP);
    return 0;
  }
  const limit = integer(values, 'limit', 1) ?? 20;
  const registry = await registryFrom(values);
  try {
    const revisions = await registry.history(positionals[0]!, { limit });
    if (values.json === true) io.out(JSON.stringify(revisions));
    else if (revisions.length === 0) io.out(`${positionals[0]}: nothing deployed`);
    else for (const revision of revisions) io.out(describeDeployment(revision));
    return 0;
  } finally {
    await registry.close();
  }
}

export async function registryCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      ...DB_OPTIONS,
      'publisher-role': { type: 'string' },
      'host-role': { type: 'string' },
      'no-roles': { type: 'boolean' },
      keep: { type: 'string' },
      'min-age': { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
    { min: 1, max: 1, names: ['init|gc'] },
  );
  if (values.help === true) {
    io.out(REGISTRY_HELP);
    return 0;
  }
  if (positionals[0] !== 'init' && positionals[0] !== 'gc')
    throw new UsageError(`unknown registry command ${JSON.stringify(positionals[0])}: expected init or gc`);
  const db = databaseFromEnv(typeof values.db === 'string' ? values.db : undefined);
  if (db === undefined) throw new UsageError('no database: pass --db <url> or set ISOPLUG_DATABASE_URL');
  const schema = typeof values.schema === 'string' ? values.schema : 'isoplug';
  if (positionals[0] === 'gc') return gcCommand(db, schema, values, io);
  const role = (option: string, fallback: string): string => {
    const value = values[option];
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(value))
      throw new UsageError(`option --${option} needs a lowercase SQL identifier`);
    return value;
  };
  const publisher = role('publisher-role', `${schema}_publisher`);
  const host = role('host-role', `${schema}_host`);
  const noRoles = values['no-roles'] === true;
  const result = await initRegistry({ db, schema, roles: noRoles ? false : { publisher, host } });
  if (values.json === true) {
    io.out(JSON.stringify(result));
    return 0;
  }
  io.out(
    result.applied.length === 0
      ? `registry ${schema} is up to date`
      : `registry ${schema}: applied migration${result.applied.length > 1 ? 's' : ''} ${result.applied.join(', ')}`,
  );
  if (result.roles) io.out(`roles: ${result.roles.publisher} (publish), ${result.roles.host} (follow)`);
  else io.out(`no roles created; the rights each needs:\n${grants(schema, publisher, host).join(';\n')};`);
  return 0;
}

async function gcCommand(db: string, schema: string, values: Parsed['values'], io: Io): Promise<number> {
  const keepRevisions = integer(values, 'keep', 1);
  const minAge = values['min-age'];
  if (minAge !== undefined && (typeof minAge !== 'string' || !/^\d+(\.\d+)?$/.test(minAge)))
    throw new UsageError('option --min-age needs a number of seconds');
  const result = await gcRegistry({
    db,
    schema,
    dryRun: values['dry-run'] === true,
    ...(keepRevisions === undefined ? {} : { keepRevisions }),
    ...(minAge === undefined ? {} : { minAgeMs: Number(minAge) * 1000 }),
  });
  if (values.json === true) {
    io.out(JSON.stringify(result));
    return 0;
  }
  const verb = result.dryRun ? 'would delete' : 'deleted';
  const revisions = Object.entries(result.revisions);
  io.out(
    revisions.length === 0
      ? `${verb} no revisions`
      : `${verb} ${revisions.map(([name, n]) => `${n} revision${n > 1 ? 's' : ''} of ${name}`).join(', ')}`,
  );
  io.out(`${verb} ${result.bundles.length} bundle${result.bundles.length === 1 ? '' : 's'} (${result.bytes} bytes)`);
  for (const b of result.bundles) io.out(`  ${b.name}  ${b.sha256.slice(0, 12)}  ${b.size} bytes`);
  return 0;
}
