// One host of the fleet demo: an HTTP server whose handler calls the plugin this process follows.
// Configured by its environment (the database, its host id, its bundle cache); tells the demo over IPC
// when it is ready (and its port), each revision it applied, and once a second how many requests each
// version served. `GET /?user=<id>`: the user id is the sticky key, so a user stays on one version.
import { createServer } from 'node:http';
import { followDeployment } from 'isoplug/fleet';

const { DEMO_DB, DEMO_HOST, DEMO_CACHE } = process.env;
const send = (message) => process.connected && process.send(message);

const greeter = await followDeployment({ db: DEMO_DB, name: 'greeter', host: DEMO_HOST, cacheDir: DEMO_CACHE });
// A hot swap with gradual rollout routes by the sticky key; one without it serves the stable version.
const canary = typeof greeter.hotSwap.rollout === 'function';
const forUser = (user) => (canary ? greeter.with({ key: user }).api : greeter.api);

let served = {};
let failed = 0;
const server = createServer(async (req, res) => {
  const user = new URL(req.url, 'http://host').searchParams.get('user') ?? 'anonymous';
  try {
    const answer = await forUser(user).greet(user);
    served[answer.version] = (served[answer.version] ?? 0) + 1;
    res.writeHead(200, { 'content-type': 'application/json', 'x-version': answer.version });
    res.end(JSON.stringify(answer));
  } catch (error) {
    failed++;
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(`${error?.code ?? 'error'}\n`);
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

greeter.on('applied', (event) => send({ type: 'applied', at: Date.now(), ...event }));
greeter.on('rejected', (event) => send({ type: 'rejected', at: Date.now(), ...event }));
const tick = setInterval(() => {
  send({ type: 'tick', served, failed });
  served = {};
  failed = 0;
}, 1000);

let closing;
const close = () =>
  (closing ??= (async () => {
    clearInterval(tick);
    await new Promise((resolve) => server.close(resolve));
    await greeter.close();
    send({ type: 'tick', served, failed });
    send({ type: 'closed' });
    if (process.connected) process.disconnect();
  })());
process.on('message', (message) => message?.type === 'close' && void close());
// The demo went away (killed): end too, nothing left behind.
process.on('disconnect', () => void close());
send({ type: 'ready', port: server.address().port, canary, status: greeter.status });
