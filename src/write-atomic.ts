/** Writing a file so that no reader ever sees half of it. */
import { rename, rm, writeFile } from 'node:fs/promises';

/**
 * Writes `data` to a temporary file beside `path`, then renames it into place. On failure the
 * temporary file is removed and the error is thrown.
 */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const aside = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await writeFile(aside, data);
    await rename(aside, path);
  } catch (error) {
    await rm(aside, { force: true });
    throw error;
  }
}
