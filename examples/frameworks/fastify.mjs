// A Fastify app whose route calls a hot-swapped plugin: each request is one call, served by the
// version current when it starts, so a swap under load drops nothing.
//
//   npm run build && node examples/frameworks/fastify.mjs
//
// It starts the app on a free port, loads it with autocannon, swaps the pricing rule half-way, prints a
// summary and exits 1 if any request failed. ISOPLUG_EXAMPLE_REQUESTS (default 20000) sets the load.
import Fastify from 'fastify';
import { createHotSwap } from 'isoplug';
import { bound, isMain, smoke } from './smoke.mjs';

const V1 = new URL('./plugins/quote-v1.mjs', import.meta.url);
const V2 = new URL('./plugins/quote-v2.mjs', import.meta.url);

/** The app: `GET /quote/:sku?qty=N` answers the current rule's quote; `x-plugin-version` says which served it. */
export function buildApp(hs) {
  const app = Fastify();
  app.get('/quote/:sku', async (request, reply) => {
    const qty = Number(request.query.qty ?? 1);
    if (!Number.isInteger(qty) || qty < 1) return reply.code(400).send({ error: 'qty must be a positive integer' });
    // The version is picked when the call starts; read it first so the header names the one that served.
    const version = hs.version;
    const quote = await hs.api.quote({ sku: request.params.sku, qty });
    return reply.header('x-plugin-version', version).send(quote);
  });
  // A plugin that cannot serve (crashed, closed, timed out) is a 503 with isoplug's code, not a 500.
  app.setErrorHandler((error, _request, reply) => {
    const status = typeof error.code === 'string' && error.code.startsWith('ERR_PLUGIN_') ? 503 : 500;
    void reply.code(status).send({ error: error.code ?? error.name });
  });
  // Closing the app closes the plugin: in-flight calls finish, then the worker ends.
  app.addHook('onClose', async () => {
    await hs.close();
  });
  return app;
}

async function main() {
  const requests = bound('ISOPLUG_EXAMPLE_REQUESTS', 20_000);
  const hs = await createHotSwap(V1, { name: 'quote', version: 'v1', standby: true });
  const app = buildApp(hs);
  try {
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const before = await (await fetch(`${url}/quote/tea?qty=12`)).json();
    console.log(`fastify  ${url}, quote for 12 tea: ${before.total} (${before.rule})`);
    const run = await smoke({
      url: `${url}/quote/tea?qty=12`,
      requests,
      connections: 32,
      swap: () => hs.swap(V2, { version: 'v2' }),
    });
    const after = await (await fetch(`${url}/quote/tea?qty=12`)).json();
    console.log(`swap     ${run.report.from} → ${run.report.to} under load (load ${run.report.loadMs.toFixed(1)} ms)`);
    console.log(`after    quote for 12 tea: ${after.total} (${after.rule})`);
    console.log(`summary  ${run.requests} requests, ${run.failed} failed, p99 ${run.p99} ms`);
    if (run.failed > 0 || after.total === before.total) process.exitCode = 1;
  } finally {
    await app.close();
  }
}

if (isMain(import.meta.url)) await main();
