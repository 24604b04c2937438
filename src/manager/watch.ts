/**
 * Watches the plugin directory with `fs.watch` (the directory and each folder in it, so a plugin
 * folder's own files count; deeper sub-folders are not watched). `node_modules` is ignored, as the
 * scan ignores it: an install shows as a change of the folder's lock file or package.json. Events are debounced: a reload starts
 * once the directory has been quiet for `debounceMs`. Editors' atomic saves (write a temp file, rename
 * it over the plugin) are directory events like any other, and the scan ignores temp and backup files.
 */
import { watch, readdirSync, statSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';

/** Names whose events are not changes of a plugin. */
const IGNORED = /^node_modules(?:$|[\\/])/;

export function watchDirectory(dir: string, debounceMs: number, onChange: () => void): () => void {
  const watchers = new Map<string, FSWatcher>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const add = (path: string) => {
    if (watchers.has(path)) return;
    try {
      const watcher = watch(path, { persistent: true }, (_event, filename) => {
        if (filename !== null && IGNORED.test(String(filename))) return;
        changed();
      });
      watcher.on('error', () => {
        watcher.close();
        watchers.delete(path);
      });
      watchers.set(path, watcher);
    } catch {
      // gone already: the next event resyncs
    }
  };
  /** Watches the directory and its folders as they are now; drops watchers of folders that went. */
  const sync = () => {
    add(dir);
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    const folders = new Set<string>();
    for (const name of names) {
      if (IGNORED.test(name)) continue;
      const path = join(dir, name);
      try {
        if (statSync(path).isDirectory()) folders.add(path);
      } catch {
        // removed meanwhile
      }
    }
    for (const [path, watcher] of watchers) {
      if (path !== dir && !folders.has(path)) {
        watcher.close();
        watchers.delete(path);
      }
    }
    for (const path of folders) add(path);
  };
  function changed(): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (stopped) return;
      sync();
      onChange();
    }, debounceMs);
  }
  sync();
  return () => {
    stopped = true;
    clearTimeout(timer);
    for (const watcher of watchers.values()) watcher.close();
    watchers.clear();
  };
}
