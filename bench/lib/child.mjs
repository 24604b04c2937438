import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Runs a bench child (node --expose-gc) and resolves with its `{ type: 'result' }` message.
 * `onProgress` gets its `{ type: 'progress' }` messages. The child must exit by itself after sending
 * its result; if it has not within `exitGraceMs`, it is killed and `hygiene` says so.
 */
export function runChild(url, args, { onProgress, exitGraceMs = 15_000, timeoutMs = 600_000, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(url), args, {
      execArgv: ['--expose-gc'],
      ...(env ? { env } : {}),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result;
    let graceTimer;
    const overall = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${url.pathname.split('/').pop()} ${args[0]} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', (message) => {
      if (message?.type === 'progress') onProgress?.(message);
      else if (message?.type === 'result') {
        result = message;
        graceTimer = setTimeout(() => {
          result.hygiene = `the child did not exit by itself within ${exitGraceMs} ms after its result (killed)`;
          child.kill('SIGKILL');
        }, exitGraceMs);
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(overall);
      clearTimeout(graceTimer);
      if (!result)
        return reject(new Error(`child ${args[0]} exited (code ${code}, signal ${signal}) without a result`));
      if (result.fatal) return reject(new Error(`child ${args[0]} failed: ${result.fatal}`));
      result.exitCode = code;
      result.hygiene ??= code === 0 ? 'exited by itself' : `exited with code ${code}`;
      resolve(result);
    });
  });
}
