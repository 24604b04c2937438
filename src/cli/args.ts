/**
 * Argument parsing for the CLI: `node:util` parseArgs, with our own checks so that every mistake
 * gives one short line naming the bad argument (parseArgs' own messages are long and vary by Node
 * version).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake in the command line: exit status 2. */
export class UsageError extends Error {
  readonly code = 'ERR_CLI_USAGE' as const;
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, 'name', { value: 'UsageError', configurable: true, writable: true });
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  readonly values: Record<string, string | boolean | Array<string | boolean> | undefined>;
  readonly positionals: string[];
}

/**
 * Parses `args` against `options`; throws `UsageError` for an unknown option, a missing or
 * unexpected option value, or a positional count outside `[min, max]`.
 */
export function parse(
  args: string[],
  options: Options,
  positionals: { min: number; max: number; names: string[] },
): Parsed {
  const {
    values,
    positionals: found,
    tokens,
  } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = options[token.name];
    if (!option) throw new UsageError(`unknown option ${token.rawName}`);
    // `--name --json` would take `--json` as the name: say so (`--name=-x` passes a value starting with -).
    if (
      option.type === 'string' &&
      (typeof token.value !== 'string' || (!token.inlineValue && token.value.startsWith('-')))
    ) {
      throw new UsageError(`option ${token.rawName} needs a value`);
    }
    if (option.type === 'boolean' && token.value !== undefined)
      throw new UsageError(`option ${token.rawName} takes no value`);
  }
  if (values.help === true) return { values, positionals: found };
  if (found.length < positionals.min)
    throw new UsageError(`missing argument <${positionals.names[found.length] ?? 'argument'}>`);
  if (found.length > positionals.max)
    throw new UsageError(`unexpected argument ${JSON.stringify(found[positionals.max])}`);
  return { values, positionals: found };
}

/** The values of a repeatable string option. */
export function strings(value: Parsed['values'][string]): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((item): item is string => typeof item === 'string');
}
