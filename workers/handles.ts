/**
 * Node's lists of a thread's active handles and requests (`process._getActiveHandles()`), kept for the
 * runtime and hidden from plugin code: best effort against accidents (plugins are trusted code), so the
 * private port is not among the handles a plugin can list.
 */

/** Hides the lists; returns the count of servers still listening and sockets not destroyed. */
export function hideHandleLists(): () => number {
  const hidden = process as unknown as Record<string, unknown>;
  const activeHandles = (hidden['_getActiveHandles'] as () => unknown[]).bind(process);
  delete hidden['_getActiveHandles'];
  delete hidden['_getActiveRequests'];
  // A closed server stays listed until its handle is gone: count the listening ones and live sockets.
  return () => {
    let open = 0;
    for (const handle of activeHandles()) {
      const h = handle as { listening?: unknown; destroyed?: unknown };
      if (typeof h.listening === 'boolean' ? h.listening : h.destroyed === false) open++;
    }
    return open;
  };
}
