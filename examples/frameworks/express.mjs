// An Express 5 app whose route calls a hot-swapped plugin: each request is one call, served by the
// version current when it starts, so a swap under load drops nothing.
//
//   npm run build && node examples/frameworks/express.mjs
//
// It starts the app on a free port, loads it with autocannon, swaps the pricing rule half-way, prints a
// summary and exits 1 if any request failed. ISOPLUG_EXAMPLE_REQUESTS (default 20000) sets the load.
import { once } from 'node:events';
import express from 'express';
import { createHotSwap } from 'isoplug';
import { bound, isMain, smoke } from './smoke.mjs';

const V1 = new URL('./plugins/quote-v1.mjs', import.meta.url);
const V2 = new URL('./plugins/quote-v2.mjs', import.meta.url);

/** The app: `GET /quote/:sku?qty=N` answers the current rule's quote; `x-plugin-version` says which served it. */
export function buildApp(hs) {
  const app = express();
  // Express 5 passes a rejected async handler to the error middleware.
  app.get('/quote/:sku', async (req, res) => {
    const qty = Number(req.query.qty ?? 1);
    if (!Number.isInteger(qty) || qty < 1) return res.status(400).json({ error: 'qty must be a positive integer' });
    // The version is picked when the call starts; read it first so the header names the one that served.
    const version = hs.version;
    const quote = await hs.api.quote({ sku: req.params.sku, qty });
    res.set('x-plugin-version', version).json(quote);
  });
  // A plugin that cannot serve (crashed, closed, timed out) is a 503 with isoplug's code, not a 500.
  app.use((error, _req, res, _next) => {
    const status = typeof error.code === 'string' && error.code.startsWith('ERR_PLUGIN_') ? 503 : 500;
    res.status(status).json({ error: error.code ?? error.name });
  });
  return app;
}

async function main() {
  const requests = bound('ISOPLUG_EXAMPLE_REQUESTS', 20_000);
  const hs = await createHotSwap(V1, { name: 'quote', version: 'v1', standby: true });
  const server = buildApp(hs).listen(0, '127.0.0.1');
  try {
    await once(server, 'listening');
    const url = `http://127.0.0.1:${server.address().port}`;
    const before = await (await fetch(`${url}/quote/tea?qty=12`)).json();
    console.log(`express  ${url}, quote for 12 tea: ${before.total} (${before.rule})`);
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
    // Stop accepting and end kept-alive connections, then close the plugin: calls in flight finish first.
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await hs.close();
  }
}

if (isMain(import.meta.url)) await main();
