// The route handler of examples/http-server: a plugin whose one export is `handle`. The server runs
// it behind createHotSwap(), in its own worker; each build of this file is a new version.
import { greeting } from './greeting.js';

/** What the server passes in: a plain, cloneable copy of the request. */
export interface HandlerRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** What the handler gives back; the server writes it as it is. */
export interface HandlerResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

// Set at build time (`buildPlugin(…, { define: { __HANDLER_VERSION__: '"v2"' } })`); 'dev' otherwise.
declare const __HANDLER_VERSION__: string | undefined;
const VERSION = typeof __HANDLER_VERSION__ === 'string' ? __HANDLER_VERSION__ : 'dev';

export function handle(request: HandlerRequest): HandlerResponse {
  const url = new URL(request.url, 'http://localhost');
  if (url.pathname !== '/') {
    return {
      status: 404,
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body: `no route for ${url.pathname}\n`,
    };
  }
  const { text } = greeting(url.searchParams.get('name') ?? 'world');
  return {
    status: 200,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'x-handler-version': VERSION },
    body: `${text} (handler ${VERSION})\n`,
  };
}
