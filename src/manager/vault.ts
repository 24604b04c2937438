/**
 * Host side of the vault wire (shared/peer-wire.ts): one MessagePort per plugin version. Answers only `call` of a
 * service listed in the manager's options (looked up in a Map of the object's OWN function members,
 * so `constructor`, `__proto__`, `toString` are never found) and `get`/`set` of the data bag (a Map:
 * no key can reach a prototype). Services run with `this` undefined; arguments and results are copies.
 */
import type { MessagePort } from 'node:worker_threads';
import { ManagerVaultDeniedError } from '../shared/errors.js';
import { serveWire, type WireRequest } from '../shared/peer-wire.js';

type Fn = (...args: unknown[]) => unknown;

/** The own function members of `services`, by name. */
export function serviceTable(services: Readonly<Record<string, unknown>>): ReadonlyMap<string, Fn> {
  const table = new Map<string, Fn>();
  for (const name of Object.keys(services)) {
    const fn = services[name];
    if (typeof fn === 'function') table.set(name, fn as Fn);
  }
  return table;
}

export function serveVault(
  port: MessagePort,
  services: ReadonlyMap<string, Fn>,
  data: Map<string, unknown>,
  plugin: string,
): void {
  const run = (request: WireRequest): unknown => {
    const name = request.name;
    if (typeof name !== 'string')
      throw new ManagerVaultDeniedError('the vault takes string names only', { pluginName: plugin });
    const args = Array.isArray(request.a) ? request.a : [];
    switch (request.op) {
      case 'call': {
        const fn = services.get(name);
        if (fn === undefined)
          throw new ManagerVaultDeniedError(`the vault has no service ${name}`, { pluginName: plugin, method: name });
        return Reflect.apply(fn, undefined, args);
      }
      case 'get':
        return data.get(name);
      case 'set':
        data.set(name, args[0]);
        return undefined;
      default:
        throw new ManagerVaultDeniedError(`the vault has no operation ${String(request.op)}`, { pluginName: plugin });
    }
  };
  serveWire(port, run);
}
