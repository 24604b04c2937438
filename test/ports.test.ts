// E5: a version that owns a listening port. Its close report's `drained` says whether ending the worker
// cut a server or socket the plugin still had open after onFree (README: a version should not own a port).
import { describe, expect, it } from 'vitest';
import { loadPlugin } from '../src/index.js';
import { tempDir, writePlugin } from './helpers.js';

const server = (closeInOnFree: boolean) => `
import { createServer } from 'node:http';
const server = createServer((_req, res) => res.end('ok'));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
export const port = () => server.address().port;
export async function onFree() {
  ${closeInOnFree ? 'server.closeAllConnections(); await new Promise((resolve) => server.close(resolve));' : ''}
}
`;

describe('a version that owns a listening port', () => {
  it('E5: drained is false when a server is still open after onFree, true once onFree closed it', async () => {
    const dir = tempDir();
    const leaves = await loadPlugin(writePlugin(dir, 'leaves.mjs', server(false)));
    const closes = await loadPlugin(writePlugin(dir, 'closes.mjs', server(true)));
    expect(await leaves.call('port')).toBeGreaterThan(0);
    expect(await closes.call('port')).toBeGreaterThan(0);
    const [left, closed] = await Promise.all([leaves.close(), closes.close()]);
    expect(left).toMatchObject({ onFree: 'ok', drained: false, terminatedCalls: 0 });
    expect(closed).toMatchObject({ onFree: 'ok', drained: true });
  });
});
