/**
 * Background load for the soak: while a test file's scenarios run, callers keep calling another
 * plugin. Every call issued is accounted for as resolved or rejected with a code.
 */
import { afterAll, beforeAll } from 'vitest';
import { loadPlugin, type Plugin } from '../../src/index.js';
import { fixture } from '../helpers.js';
import { soakState, type BackgroundTally } from './state.js';

let plugin: Plugin<{ echo(value: number): number }> | undefined;
let running = false;
let callers: Promise<void>[] = [];
const tally: BackgroundTally = { issued: 0, resolved: 0, rejectedCoded: 0, rejectedUncoded: 0 };

beforeAll(async () => {
  plugin = await loadPlugin(fixture('echo.mjs'));
  running = true;
  callers = Array.from({ length: 4 }, async () => {
    for (let i = 0; running; i++) {
      tally.issued++;
      try {
        await plugin!.api.echo(i);
        tally.resolved++;
      } catch (error) {
        if (typeof (error as { code?: unknown }).code === 'string') tally.rejectedCoded++;
        else tally.rejectedUncoded++;
      }
    }
  });
});

afterAll(async () => {
  running = false;
  await Promise.all(callers);
  await plugin?.close();
  soakState.background = tally;
});
