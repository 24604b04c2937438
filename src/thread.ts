/**
 * One worker of a plugin version and the wire to it: the private port, the calls queued this tick,
 * the message counts that name a lost message (protocol.ts), ref/unref, terminate. A Thread knows
 * nothing of calls' promises or of the version's state: what arrives goes to its owner (a Boot while
 * the module loads, then the Plugin).
 *
 * A Thread can be spawned before it has a module (a hot swap's standby): the runtime boots and waits
 * for the `Load` message, so a version loaded onto it pays only for importing its module.
 */
import {
  MessageChannel,
  Worker,
  receiveMessageOnPort,
  type MessagePort,
  type ResourceLimits,
} from 'node:worker_threads';
import { ThreadChildren } from './children.js';
import { hostOutput, type VersionOutput } from './output.js';
import { EndTag } from './shared/ending-wire.js';
import { unpack, type Pack } from './shared/envelope.js';
import {
  Tag,
  callCount,
  callMessage,
  forEachCall,
  pushCall,
  stampAck,
  type BootData,
  type Calls,
  type CodeLoad,
  type HookFlag,
  type HostMessage,
  type LoadMessage,
  type WorkerMessage,
} from './shared/protocol.js';
import { sleep } from './time.js';
import { DEFAULTS } from './options.js';
import { withEndSlot } from './boot-queue.js';
import { workerUrl } from './worker-url.js';

/** What a worker is created with; fixed for its life, so a standby serves only versions that match. */
export interface SpawnOptions {
  readonly resourceLimits: ResourceLimits | undefined;
  readonly env: Record<string, string | undefined> | undefined;
  readonly execArgv: readonly string[];
}

/** Where a Thread's events go. */
export interface ThreadOwner {
  /** A message from the worker (every type but `Lost`, which the thread turns into `lost`). */
  message(thread: Thread, message: WorkerMessage): void;
  /** The worker could not read our message `s`: the calls it carried never reached the plugin. */
  lost(thread: Thread, s: number): void;
  /** A call sent alone (`Calls` holding one call) could not be cloned; nothing was posted. */
  unsendable(thread: Thread, message: Calls, error: unknown): void;
  /** Call `id`, queued in a batch that could not be cloned, was sent alone, in message `seq`. */
  resent(thread: Thread, id: number, seq: number): void;
  /** The worker exited; `error` is what its `error` event said, if anything. */
  exit(thread: Thread, code: number, error: unknown): void;
}

const isArray = Array.isArray;
/** Schedules a batch's flush: a promise reaction costs less than queueMicrotask (no async resource per call). */
const settled = Promise.resolve();

const detached: ThreadOwner = {
  message: () => {},
  lost: () => {},
  unsendable: () => {},
  resent: () => {},
  exit: () => {},
};

export class Thread {
  /** Index of this thread in its version (0 for the first). */
  lane = 0;
  /** Messages on the worker's channels that were not ours. */
  stray = 0;
  readonly spawn: SpawnOptions;
  readonly #worker: Worker;
  readonly #port: MessagePort;
  #owner: ThreadOwner = detached;
  /** The calls queued this tick, as they will travel (protocol.ts: `Calls`); `[0]` when none. */
  #outbox: Calls = [0];
  /** Messages posted to the worker on the private port; the n-th is message n. */
  #sent = 0;
  /** Messages received from the worker on the private port, read or lost (`messageerror`). */
  #received = 0;
  /** The `k` our last message to the worker carried. */
  #acked = 0;
  /** An `Ack` is scheduled (see `#ackIfIdle`). */
  #ackScheduled = false;
  #error: unknown;
  #exitCode: number | undefined;
  /** Set once we terminate the worker ourselves: its exit is then not a crash. */
  #terminating = false;
  readonly #exited: Promise<number>;
  /** Set once the worker sent its owner anything (the runtime's own messages do not count). */
  #heard = false;
  /** Where the worker's output goes (workers/stdio.ts): the host's streams until a version claims it. */
  #output: VersionOutput = hostOutput;
  /** The child processes the worker reported, and those the host had to kill. */
  readonly children = new ThreadChildren();
  /** What an uncaught error in the worker was (`Fatal`): the cause of its exit. */
  #fatal: unknown;
  /** The pending `End`: resolves with how many children the runtime ended, or undefined (no answer). */
  #ending: Promise<number | undefined> | undefined;
  #ended: ((children: number | undefined) => void) | undefined;

  /** Resolves once the worker runs JavaScript (`'online'`: its isolate and Node's bootstrap are done), or exited. */
  readonly booted: Promise<void>;

  /** Spawns the worker; throws what `new Worker` throws (then nothing is left open). */
  constructor(spawn: SpawnOptions) {
    this.spawn = spawn;
    const { port1, port2 } = new MessageChannel();
    const boot: BootData = { port: port2 };
    try {
      this.#worker = new Worker(workerUrl(), {
        workerData: boot,
        transferList: [port2],
        ...(spawn.resourceLimits ? { resourceLimits: spawn.resourceLimits } : {}),
        ...(spawn.env ? { env: spawn.env } : {}),
        execArgv: [...spawn.execArgv],
      });
    } catch (error) {
      port1.close();
      port2.close();
      throw error;
    }
    this.#port = port1;
    this.#exited = new Promise((resolve) => {
      this.#worker.on('exit', (code) => {
        // What the worker posted before it died (output, `Fatal`, `Ended`) is read before its exit is handled.
        for (let m = receiveMessageOnPort(this.#port); m !== undefined; m = receiveMessageOnPort(this.#port)) {
          this.#receive(m.message as WorkerMessage);
        }
        this.#exitCode = code;
        this.children.killAfterExit();
        this.#ended?.(undefined);
        this.#output.laneEnded(this.lane);
        this.#port.close();
        this.#harvested(undefined);
        resolve(code);
        this.#owner.exit(this, code, this.#error ?? this.#fatal);
      });
    });
    this.booted = new Promise((resolve) => {
      this.#worker.once('online', resolve);
      void this.#exited.then(() => resolve());
    });
    this.#worker.on('error', (error) => (this.#error = error));
    this.#worker.on('message', () => this.stray++);
    this.#port.on('message', (message: WorkerMessage) => this.#receive(message));
    this.#port.on('messageerror', () => this.#unreadable());
    this.ref(false);
  }

  get threadId(): number {
    return this.#worker.threadId;
  }

  /** True once the worker has sent anything on the private port (a worker that died before it read `Load` has not). */
  get heard(): boolean {
    return this.#heard;
  }

  /** True once the worker has exited. */
  get gone(): boolean {
    return this.#exitCode !== undefined;
  }

  /** True when we terminated the worker (its exit is then not a crash). */
  get terminating(): boolean {
    return this.#terminating;
  }

  /** Hands the thread to a boot or a version; from now on its events go there (an exit already seen, too). */
  attach(owner: ThreadOwner, lane: number): void {
    this.#owner = owner;
    this.lane = lane;
    if (this.#exitCode !== undefined) owner.exit(this, this.#exitCode, this.#error);
  }

  /** Starts the module's import in the worker. Throws what postMessage throws (`data` not cloneable). */
  load(message: Omit<LoadMessage, 't' | 'k'>): void {
    this.send({ t: Tag.Load, k: 0, ...message });
  }

  /** The sequence number the next message to the worker will have. */
  get nextSeq(): number {
    return this.#sent + 1;
  }

  /** Queues a call for this tick's batch (protocol.ts: `Calls`): calls made in the same tick travel in one message. */
  enqueue(id: number, method: string, args: unknown[], slots: number[] | undefined, hook: HookFlag): void {
    if (pushCall(this.#outbox, id, method, args, slots, hook) === 1) void settled.then(this.flush);
  }

  /** Sends the calls queued this tick: one message for all of them. */
  readonly flush = (): void => {
    const batch = this.#outbox;
    const calls = callCount(batch);
    if (calls === 0) return;
    this.#outbox = [0];
    // The worker is gone: the owner already rejected these calls.
    if (this.#exitCode !== undefined) return;
    if (calls === 1) return void this.sendCall(batch, undefined);
    try {
      this.send(batch);
    } catch {
      // One of them cannot be cloned: send them one by one so only that call fails. Each then
      // travels in its own message, not in the batch's.
      forEachCall(batch, (id, method, args, slots, hook) => {
        const seq = this.sendCall(callMessage(id, method, args, slots, hook), undefined);
        if (seq !== undefined) this.#owner.resent(this, id, seq);
      });
    }
  };

  /**
   * Every message to the worker goes through here: the calls queued this tick go first (so a queued
   * call's sequence number holds), the message is stamped with `k`, posted and counted. Returns its
   * sequence number; throws what postMessage throws (then nothing was sent or counted).
   */
  send(message: HostMessage, transfer?: readonly unknown[]): number {
    if (callCount(this.#outbox) > 0) this.flush();
    stampAck(message, this.#received);
    this.#port.postMessage(message, transfer as MessagePort[] | undefined);
    this.#acked = this.#received;
    return ++this.#sent;
  }

  /** Sends one call alone; its sequence number, or undefined when it could not be cloned (the owner was told). */
  sendCall(message: Calls, transfer: readonly unknown[] | undefined): number | undefined {
    try {
      return this.send(message, transfer);
    } catch (error) {
      this.#owner.unsendable(this, message, error);
      return undefined;
    }
  }

  /** Where the worker's output goes from now on (a version's, once it loads on this thread). */
  setOutput(output: VersionOutput): void {
    this.#output = output;
    output.laneStarted();
  }

  #receive(message: WorkerMessage): void {
    this.#received++;
    if (!isArray(message)) {
      switch (message.t) {
        case EndTag.Out: {
          const { s, n } = message;
          return this.#output.write(this.lane, s, message.c, () => {
            if (this.#exitCode === undefined) this.send({ t: EndTag.OutAck, s, n, k: 0 });
          });
        }
        case EndTag.Child:
          return this.children.report(message.pid, message.detached, message.alive);
        case EndTag.Tid:
          this.children.tid = message.tid;
          return;
        case EndTag.Ended:
          return this.#ended?.(message.children);
        case EndTag.Fatal:
          this.#fatal = fatalCause(message.error);
          return;
      }
    }
    this.#heard = true;
    if (!isArray(message) && message.t === Tag.Lost) this.#owner.lost(this, message.s);
    else if (!isArray(message) && message.t === Tag.CodeCache) this.#harvested(message.data);
    else if (!isArray(message) && message.t === Tag.Prepared) this.#onPrepared?.(true);
    else this.#owner.message(this, message);
    if (isArray(message) && !this.#ackScheduled) {
      this.#ackScheduled = true;
      setImmediate(this.#ackIfIdle);
    }
  }

  /**
   * The worker keeps each batch of replies (their results included) until our next message says we
   * received it. When nothing else went to the worker since replies arrived (the caller made no new
   * call), a bare `Ack` lets it drop them now: a large result is not kept alive by an idle version.
   * A stream of calls carries the acknowledgement itself, so this sends nothing then.
   */
  readonly #ackIfIdle = (): void => {
    this.#ackScheduled = false;
    if (this.#exitCode !== undefined || this.#acked >= this.#received) return;
    try {
      this.send({ t: Tag.Ack, k: 0 });
    } catch {
      // The port is closing with the worker: nothing is kept any more.
    }
  };

  /** Who takes the code cache's data this worker posts (`CodeLoad.harvest`); told undefined if it exits first. */
  #onCode: ((data: Uint8Array | undefined) => void) | undefined;

  /** The bytes (digest) whose module this worker ran ahead (`prepare` with `run`): it can serve only them. */
  ranAhead: string | undefined;
  #onPrepared: ((done: boolean) => void) | undefined;

  /**
   * Compiles `code` on this idle worker ahead of its `Load` (and with `run`, runs its top level). Resolves
   * true once the worker has, false if it exited first; throws what postMessage throws.
   */
  prepare(code: CodeLoad, run: boolean): Promise<boolean> {
    if (this.#exitCode !== undefined) return Promise.resolve(false);
    const done = new Promise<boolean>((resolve) => (this.#onPrepared = resolve));
    void this.#exited.then(() => this.#onPrepared?.(false));
    this.send({ t: Tag.Prepare, k: 0, code, run });
    if (run) this.ranAhead = code.digest;
    return done;
  }

  /** Asks for the worker's code cache data (it is sent once, after `Ready`): `take` gets it, or undefined. */
  harvest(take: (data: Uint8Array | undefined) => void): void {
    this.#onCode = take;
    if (this.#exitCode !== undefined) this.#harvested(undefined);
  }

  #harvested(data: Uint8Array | undefined): void {
    const take = this.#onCode;
    this.#onCode = undefined;
    take?.(data);
  }

  /** A message from the worker could not be read: it still counts, and its number tells the worker which replies to send again. */
  #unreadable(): void {
    const s = ++this.#received;
    if (this.#exitCode === undefined) this.send({ t: Tag.Lost, s, k: 0 });
  }

  /** Keeps the process alive (calls in flight, a close) or not (idle). */
  ref(on: boolean): void {
    if (on) {
      this.#worker.ref();
      this.#port.ref();
    } else {
      this.#worker.unref();
      this.#port.unref();
    }
  }

  /** Ends the worker as a crash, with `error` as its cause (the ArrayBuffer guard). */
  fail(error: unknown): void {
    if (this.#error !== undefined || this.#exitCode !== undefined) return;
    this.#error = error;
    this.#worker.terminate().catch(() => {});
  }

  /**
   * Asks the runtime to flush its output and end its children (SIGTERM, SIGKILL after `graceMs`);
   * resolves with how many it ended, or undefined when it did not answer within `ms` (stuck, or gone).
   */
  end(graceMs: number, ms: number): Promise<number | undefined> {
    if (this.#exitCode !== undefined) return Promise.resolve(undefined);
    if (this.#ending === undefined) {
      // Ending keeps the process alive, as terminating does.
      this.#worker.ref();
      this.#ending = new Promise((resolve) => (this.#ended = resolve));
      this.send({ t: EndTag.End, grace: graceMs, k: 0 });
    }
    const timer = sleep(ms);
    return Promise.race([this.#ending, timer.promise.then(() => undefined)]).finally(() => timer.cancel());
  }

  /**
   * Terminates the worker (once) and waits for its exit, at most `ms`. True when it exited. Children
   * the runtime did not end are killed first (see children.ts).
   */
  async terminate(ms: number): Promise<boolean> {
    if (this.#exitCode !== undefined) return true;
    if (!this.#terminating) {
      this.#terminating = true;
      this.#worker.ref();
      await this.children.killBeforeTerminate();
      // Bounded process-wide (boot-queue.ts): a hundred terminations at once stall the host's loop.
      const worker = this.#worker;
      void withEndSlot(() => {
        void worker.terminate().catch(() => {});
        return this.#exited;
      }, DEFAULTS.terminateTimeoutMs);
    }
    const timer = sleep(ms);
    try {
      return await Promise.race([this.#exited.then(() => true), timer.promise.then(() => false)]);
    } finally {
      timer.cancel();
    }
  }
}

/** The cause of a worker's exit after an uncaught error: the Error rebuilt, or the value thrown. */
function fatalCause(p: Pack): unknown {
  if (p.kind === 'value') return p.value !== undefined || p.type === 'undefined' ? p.value : p.text;
  return unpack(p, () => new Error());
}

/** `count` new workers for a version; if one cannot start, those already started are ended and the error thrown. */
export function spawnThreads(spawn: SpawnOptions, count: number): Thread[] {
  const threads: Thread[] = [];
  try {
    for (let i = 0; i < count; i++) threads.push(new Thread(spawn));
  } catch (error) {
    for (const thread of threads) void thread.terminate(DEFAULTS.terminateTimeoutMs);
    throw error;
  }
  return threads;
}
