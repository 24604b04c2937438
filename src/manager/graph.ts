/** Dependency order of a plugin set: dependencies before dependents, names sorted within a level. */
import { ManagerDependencyCycleError, ManagerDependencyError } from '../shared/errors.js';

/**
 * Topological order of `deps` (name → its dependencies). Throws `ERR_MANAGER_DEPENDENCY` for a
 * dependency not in the set, `ERR_MANAGER_DEPENDENCY_CYCLE` (with the cycle) for a cycle.
 */
export function dependencyOrder(deps: ReadonlyMap<string, readonly string[]>): string[] {
  for (const [name, list] of deps) {
    for (const dep of list) {
      if (!deps.has(dep))
        throw new ManagerDependencyError(`plugin ${name} depends on ${dep}, which is not loaded`, {
          pluginName: name,
          dependency: dep,
        });
    }
  }
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): void => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      throw new ManagerDependencyCycleError(`dependency cycle: ${cycle.join(' → ')}`, { pluginName: name, cycle });
    }
    state.set(name, 'visiting');
    path.push(name);
    for (const dep of [...(deps.get(name) ?? [])].sort()) visit(dep);
    path.pop();
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of [...deps.keys()].sort()) visit(name);
  return order;
}
