/**
 * The scratch PostgreSQL of the fleet tests (scripts/pg-cluster.mjs, shared with the fleet bench and
 * demo), and whether the tests can run here.
 */
import { Cluster, findPgBin } from '../../scripts/pg-cluster.mjs';

export { Cluster, findPgBin };

/** Set by CI once PostgreSQL is installed: a missing server is then a failure, not a skip. */
export const PG_REQUIRED = process.env.ISOPLUG_REQUIRE_PG === '1';

const found = findPgBin();
/** Why the PostgreSQL tests cannot run here, or undefined when they can. */
export const pgMissing: string | undefined = 'missing' in found && !PG_REQUIRED ? found.missing : undefined;
