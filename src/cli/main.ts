/** The `isoplug` command line: dispatch to a command, and turn failures into one line and an exit status. */
import { existsSync, readFileSync } from 'node:fs';
import { UsageError, parse } from './args.js';
import { BuildError } from './build.js';
import { buildCommand } from './build-command.js';
import type { Io } from './io.js';
import { FleetError } from '../fleet/errors.js';
import { promoteCommand, publishCommand, rollbackCommand, rolloutCommand } from '../fleet/cli/deploy.js';
import { historyCommand, registryCommand, statusCommand } from '../fleet/cli/status.js';

export const HELP = `Usage: isoplug <command> [options]

Commands:
  build <pluginDir|pluginFile> <outDir>   bundle a plugin version into one content-hashed ES module

Fleet (a registry in PostgreSQL; --db <url> or ISOPLUG_DATABASE_URL):
  registry init                           create or upgrade the registry's schema and roles
  publish <plugin> --name <name>          build and store a version (--stable: serve it everywhere)
  rollout <name> <version> --percent <p>  a canary beside the stable version
  promote <name>                          the canary becomes the stable version
  rollback <name> [--to <version>]        a new revision pointing back
  status <name>                           which host serves what, who refused what, who is stale
  history <name>                          the revisions, newest first

Options:
  -h, --help      show this help; isoplug <command> --help for a command's
  -v, --version   print isoplug's version
`;

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = {
  build: buildCommand,
  registry: registryCommand,
  publish: publishCommand,
  rollout: rolloutCommand,
  promote: promoteCommand,
  rollback: rollbackCommand,
  status: statusCommand,
  history: historyCommand,
};

/** isoplug's own version, from the package.json above the built file (dist/) or the source (src/cli/). */
function version(): string {
  for (const candidate of ['../package.json', '../../package.json']) {
    const url = new URL(candidate, import.meta.url);
    if (!existsSync(url)) continue;
    const manifest = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version?: string };
    if (manifest.name === 'isoplug' && manifest.version) return manifest.version;
  }
  return 'unknown';
}

/** Runs the command line `args` (without node and the script); resolves with the exit status. */
export async function main(args: string[], io: Io): Promise<number> {
  const [command, ...rest] = args;
  const label = command !== undefined && Object.hasOwn(COMMANDS, command) ? `isoplug ${command}` : 'isoplug';
  try {
    if (command === undefined) {
      io.err(HELP);
      return 2;
    }
    if (command.startsWith('-')) {
      const { values } = parse(
        args,
        { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
        { min: 0, max: 0, names: [] },
      );
      if (values.version === true) io.out(version());
      else io.out(HELP);
      return 0;
    }
    if (command === 'help') {
      const topic = rest[0];
      const run = topic !== undefined && Object.hasOwn(COMMANDS, topic) ? COMMANDS[topic] : undefined;
      if (run) return await run(['--help'], io);
      io.out(HELP);
      return 0;
    }
    const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (!run)
      throw new UsageError(
        `unknown command ${JSON.stringify(command)} (commands: ${Object.keys(COMMANDS).join(', ')})`,
      );
    return await run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${label}: ${error.message} (see ${label} --help)`);
      return 2;
    }
    if (error instanceof BuildError || error instanceof FleetError) {
      io.err(`${label}: ${error.message} (${error.code})`);
      return 1;
    }
    io.err(`${label}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
