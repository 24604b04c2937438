// A node:http server whose route handler is a plugin behind a HotSwap: every request is one call,
// served by the version current when it starts, so a swap never drops or splits a request.
import { createServer, get as httpGet } from 'node:http';

const MAX_BODY = 1 << 20;

/**
 * Creates (does not start) the server. `hs` is a HotSwap of a module exporting
 * `handle({ method, url, headers, body }) → { status, headers, body }`.
 */
export function createHandlerServer(hs) {
  const stats = { requests: 0, failed: 0 };
  const server = createServer(async (req, res) => {
    stats.requests++;
    try {
      const chunks = [];
      let size = 0;
      for await (const chunk of req) {
        size += chunk.length;
        if (size > MAX_BODY) throw Object.assign(new Error('request body too large'), { status: 413 });
        chunks.push(chunk);
      }
      const body = Buffer.concat(chunks).toString('utf8');
      const reply = await hs.api.handle({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(reply.status, reply.headers).end(reply.body);
    } catch (error) {
      // A handler that throws, or no version able to serve: a 500 naming the error's code.
      stats.failed++;
      if (!res.headersSent) res.writeHead(error.status ?? 500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`handler failed: ${error.code ?? error.name}\n`);
    }
  });
  return { server, stats };
}

/** Listens on `host:port` (port 0: a free one) and resolves with the base URL. */
export function listen(server, port = 0, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(`http://${host}:${address.port}`);
    });
  });
}

/** Stops accepting, ends idle and busy keep-alive connections, resolves once closed. */
export function close(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** One GET on a connection of its own: `{ status, version, body }` (`version` from `x-handler-version`). */
export function get(url) {
  return new Promise((resolve, reject) => {
    httpGet(url, { agent: false }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          version: res.headers['x-handler-version'],
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    }).on('error', reject);
  });
}
