import { describe, expect, it } from 'vitest';
import { loadPlugin, PluginTerminatedError } from '../src/index.js';
import { fixture, fifo, Gate, caught } from './helpers.js';

type SyscallApi = typeof import('./fixtures/f-syscall.mjs');
type EchoApi = typeof import('./fixtures/echo.mjs');

describe('a worker blocked in a system call', () => {
  it('F9: close returns by its deadline with terminated false, the call rejects ERR_PLUGIN_TERMINATED, the host keeps serving', async () => {
    const neighbour = await loadPlugin<EchoApi>(fixture('echo.mjs'));
    const gate = new Gate();
    const plugin = await loadPlugin<SyscallApi>(fixture('f-syscall.mjs'), { data: { gate: gate.buffer } });
    const pipe = fifo();
    const blocked = caught(plugin.api.block(pipe.path));
    await gate.entered(1);

    const report = await plugin.close({ timeoutMs: 50, terminateTimeoutMs: 100 });
    expect(report).toMatchObject({
      outcome: 'closed',
      drained: false,
      inFlightAtClose: 1,
      terminatedCalls: 1,
      onFree: 'skipped',
      terminated: false,
    });
    const error = await blocked;
    expect(error).toBeInstanceOf(PluginTerminatedError);
    expect(error).toMatchObject({ code: 'ERR_PLUGIN_TERMINATED', method: 'block', version: plugin.version });
    expect(plugin.state).toBe('closed');
    expect(plugin.inFlight).toBe(0);
    await expect(plugin.api.block(pipe.path)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CLOSED', method: 'block' });
    expect(await plugin.close()).toBe(report);

    // Meanwhile the host still serves another version.
    expect(await neighbour.api.echo('still serving')).toBe('still serving');
    await neighbour.close();

    // The worker is still blocked: it exits (terminated, code 1) once the system call returns.
    let exited = false;
    void plugin.exited.then(() => (exited = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(exited).toBe(false);
    pipe.release();
    expect(await plugin.exited).toBe(1);
    expect(plugin.state).toBe('closed');
    expect(plugin.stats).toMatchObject({ inFlight: 0, strayMessages: 0 });
  });
});
