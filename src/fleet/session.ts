/**
 * One database session that stays: connect, `LISTEN`, and when the connection is lost (the server
 * restarted, `pg_terminate_backend`, a network cut caught by a query timeout) connect again with
 * exponential backoff and jitter. node-postgres does not reconnect by itself, and a notification sent while
 * a session is away is lost for it: `connected` fires after every (re)connect, once `LISTEN` is in place,
 * so the owner re-reads the state then. Notifications are hints, never the state.
 */
import { EventEmitter } from 'node:events';
import type { Client, ClientConfig, Notification, QueryResultRow } from 'pg';
import { FleetClosedError, FleetUnavailableError } from './errors.js';
import { hangUp, ident, isConnectionError, type Pg, type Queryable } from './pg.js';

export interface SessionOptions {
  readonly pg: Pg;
  readonly config: ClientConfig;
  readonly channel: string;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
}

export interface SessionEvents {
  /** Connected and listening (again): re-read the state now. */
  connected: [];
  /** The connection failed or was lost; the session keeps trying. */
  disconnected: [error: Error];
  /** A notification on the channel. */
  hint: [payload: string];
}

export class Session extends EventEmitter<SessionEvents> implements Queryable {
  readonly #options: SessionOptions;
  #client: Client | undefined;
  #closed = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  /** Drops the current client: set while one is connecting or connected. */
  #drop: ((error: Error) => void) | undefined;

  constructor(options: SessionOptions) {
    super();
    this.#options = options;
  }

  get connected(): boolean {
    return this.#client !== undefined;
  }

  /** Starts connecting (in the background); `connected` or `disconnected` follow. */
  start(): void {
    this.#loop ??= this.#run();
  }

  async #run(): Promise<void> {
    const { pg } = this.#options;
    let attempt = 0;
    while (!this.#closed) {
      const client = new pg.Client(this.#options.config);
      let lost!: (error: Error) => void;
      const gone = new Promise<Error>((resolve) => (lost = resolve));
      // pg emits 'error' on an idle client whose server went away: without a listener that would crash the process.
      client.on('error', (error) => lost(error));
      client.on('end', () => lost(new FleetUnavailableError('the database connection ended')));
      client.on('notification', (message: Notification) => {
        if (message.channel === this.#options.channel) this.emit('hint', message.payload ?? '');
      });
      // close() during the attempt cuts it short instead of waiting out the connect timeout.
      this.#drop = lost;
      try {
        await Promise.race([
          (async () => {
            await client.connect();
            await client.query(`LISTEN ${ident(this.#options.channel)}`);
          })(),
          gone.then((error) => Promise.reject(error)),
        ]);
      } catch (error) {
        this.#drop = undefined;
        hangUp(client);
        if (this.#closed) break;
        this.emit('disconnected', unavailable(error));
        await this.#pause(attempt++);
        continue;
      }
      if (this.#closed) {
        hangUp(client);
        break;
      }
      attempt = 0;
      this.#client = client;
      this.emit('connected');
      const error = await gone;
      this.#client = undefined;
      this.#drop = undefined;
      hangUp(client);
      if (this.#closed) break;
      this.emit('disconnected', unavailable(error));
      await this.#pause(attempt++);
    }
  }

  /** Waits before the next attempt: backoff doubling per failed attempt, capped, with jitter; `close()` cuts it short. */
  #pause(attempt: number): Promise<void> {
    const { backoffMs, maxBackoffMs } = this.#options;
    const ceiling = Math.min(maxBackoffMs, backoffMs * 2 ** Math.min(attempt, 30));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    return new Promise((resolve) => {
      const timer = setTimeout(done, delay);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /**
   * A query on the session. Rejects `ERR_FLEET_UNAVAILABLE` when it is not connected, or when the query
   * failed because the connection did (the session then drops the client and reconnects).
   */
  async query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<{ rows: R[] }> {
    if (this.#closed) throw new FleetClosedError('the session is closed');
    const client = this.#client;
    if (!client) throw new FleetUnavailableError('not connected to the database');
    try {
      return await client.query<R>(text, values);
    } catch (error) {
      if (isConnectionError(error)) {
        const lost = unavailable(error);
        if (this.#client === client) this.#drop?.(lost);
        throw lost;
      }
      throw error;
    }
  }

  /** Ends the session and stops reconnecting. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    this.#drop?.(new FleetClosedError('the session is closed'));
    await this.#loop;
  }
}

function unavailable(error: unknown): FleetUnavailableError {
  if (error instanceof FleetUnavailableError) return error;
  return new FleetUnavailableError(
    `the database is unreachable: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}
