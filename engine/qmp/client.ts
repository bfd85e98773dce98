// A QMP client (QEMU's JSON machine protocol) over a unix socket: greeting,
// capabilities negotiation, commands matched to replies by id, events kept
// for waiters, and a timeout on everything, so a hung or dead QEMU becomes
// a BlockvaultError and never a hang.
import { createConnection, type Socket } from 'node:net';
import { BlockvaultError } from '../core/errors.js';

export const qmpCommandMsDefault = 30_000;
export const qmpGreetingMs = 5_000;
/** One QMP message; QEMU's largest replies (query-qmp-schema) are a few MiB. */
export const qmpMessageBytesMax = 64 * 1024 * 1024;
/** Events kept for waitEvent(); older ones are dropped first. */
export const qmpEventsMax = 1024;

export interface QmpEvent { event: string; data?: Record<string, unknown>; timestamp?: { seconds: number; microseconds: number } }
export interface QmpVersion { major: number; minor: number; micro: number }

/** An error QEMU answered with: its class (GenericError, DeviceNotFound, ...) kept for callers that expect one. */
export class QmpCommandError extends BlockvaultError {
  constructor(readonly command: string, readonly errorClass: string, readonly desc: string, where: string) {
    super('HYPERVISOR', `${where}: QEMU refused ${command}: ${desc}`);
  }
}

interface Pending { command: string; resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }

export class QmpClient {
  version: QmpVersion = { major: 0, minor: 0, micro: 0 };
  private buffered = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly events: QmpEvent[] = [];
  private readonly eventWaiters = new Set<() => void>();
  private closedReason: string | null = null;
  private greeting: ((msg: Record<string, unknown>) => void) | null = null;

  private constructor(private readonly socket: Socket, readonly path: string) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.onData(text));
    socket.on('error', (err) => this.onClose(`connection error: ${err.message}`));
    socket.on('close', () => this.onClose('QEMU closed the QMP connection (the VM exited?)'));
  }

  /** Connects, reads the greeting and leaves capabilities-negotiation mode. */
  static async connect(path: string, greetingMs = qmpGreetingMs): Promise<QmpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection({ path });
      s.once('connect', () => { s.removeAllListeners('error'); resolve(s); });
      s.once('error', (err: NodeJS.ErrnoException) => reject(new BlockvaultError(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'BAD_INPUT' : 'HYPERVISOR',
        `cannot connect to the QMP socket ${path}: ${err.code === 'ENOENT' ? 'no such socket (is the VM running, started with -qmp unix:' + path + ',server=on,wait=off?)' : err.code === 'ECONNREFUSED' ? 'nothing listens there (the VM is not running)' : err.message}`)));
    });
    const client = new QmpClient(socket, path);
    try {
      const hello = await client.readGreeting(greetingMs);
      const v = (hello.QMP as { version?: { qemu?: QmpVersion } }).version?.qemu;
      if (v) client.version = v;
      await client.execute('qmp_capabilities');
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  private readGreeting(ms: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.greeting = null; reject(new BlockvaultError('BAD_INPUT', `${this.path} is not a QMP server: no QMP greeting within ${ms} ms (another client may hold a single-client monitor)`)); }, ms);
      this.greeting = (msg) => {
        clearTimeout(timer);
        this.greeting = null;
        if (typeof msg.QMP === 'object' && msg.QMP !== null) resolve(msg);
        else if (typeof msg.closedBeforeGreeting === 'string') reject(new BlockvaultError('BAD_INPUT', `${this.path} is not a QMP server: ${msg.closedBeforeGreeting}`));
        else reject(new BlockvaultError('BAD_INPUT', `${this.path} is not a QMP server: its first message was ${JSON.stringify(msg).slice(0, 120)}`));
      };
      if (this.closedReason) { clearTimeout(timer); reject(new BlockvaultError('BAD_INPUT', `${this.path} is not a QMP server: ${this.closedReason}`)); }
    });
  }

  private onData(text: string): void {
    this.buffered += text;
    if (this.buffered.length > qmpMessageBytesMax) return this.fail(`a QMP message longer than ${qmpMessageBytesMax} bytes`);
    for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, nl).trim();
      this.buffered = this.buffered.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
      if (typeof msg !== 'object' || msg === null) throw new Error('not an object');
    } catch {
      return this.fail(`it sent something that is not JSON: ${JSON.stringify(line.slice(0, 80))}`);
    }
    if (this.greeting) return this.greeting(msg);
    if (typeof msg.event === 'string') {
      this.events.push(msg as unknown as QmpEvent);
      if (this.events.length > qmpEventsMax) this.events.shift();
      for (const w of [...this.eventWaiters]) w();
      return;
    }
    const p = typeof msg.id === 'string' ? this.pending.get(msg.id) : undefined;
    if (!p) return; // a reply to a command that already timed out
    this.pending.delete(msg.id as string);
    clearTimeout(p.timer);
    if ('return' in msg) p.resolve(msg.return);
    else {
      const e = (msg.error ?? {}) as { class?: string; desc?: string };
      p.reject(new QmpCommandError(p.command, e.class ?? 'GenericError', e.desc ?? JSON.stringify(msg), this.path));
    }
  }

  private fail(why: string): void {
    this.onClose(why);
    this.socket.destroy();
  }

  private onClose(why: string): void {
    this.closedReason ??= why;
    if (this.greeting) this.greeting({ closedBeforeGreeting: why }); // not QMP: say so now, not at the timeout
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new BlockvaultError('HYPERVISOR', `${this.path}: ${p.command}: ${this.closedReason}`));
      this.pending.delete(id);
    }
    for (const w of [...this.eventWaiters]) w();
  }

  get closed(): string | null {
    return this.closedReason;
  }

  /** Runs one command; QEMU's error becomes a QmpCommandError, silence past `ms` a HYPERVISOR error. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, ms = qmpCommandMsDefault): Promise<T> {
    if (this.closedReason) return Promise.reject(new BlockvaultError('HYPERVISOR', `${this.path}: ${command}: ${this.closedReason}`));
    const id = `bv-${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new BlockvaultError('HYPERVISOR', `${this.path}: QEMU did not answer ${command} within ${ms} ms`));
      }, ms);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  /** Waits for (and consumes) the first kept event that `match` accepts, or fails after `ms`. */
  waitEvent(match: (e: QmpEvent) => boolean, what: string, ms = qmpCommandMsDefault): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const at = this.events.findIndex(match);
        if (at >= 0) {
          done();
          resolve(this.events.splice(at, 1)[0]);
        } else if (this.closedReason) {
          done();
          reject(new BlockvaultError('HYPERVISOR', `${this.path}: waiting for ${what}: ${this.closedReason}`));
        }
      };
      const timer = setTimeout(() => { done(); reject(new BlockvaultError('HYPERVISOR', `${this.path}: no ${what} within ${ms} ms`)); }, ms);
      const done = (): void => { clearTimeout(timer); this.eventWaiters.delete(check); };
      this.eventWaiters.add(check);
      check();
    });
  }

  /** True when QEMU is at least major.minor. */
  atLeast(major: number, minor: number): boolean {
    return this.version.major > major || (this.version.major === major && this.version.minor >= minor);
  }

  close(): void {
    this.onClose('closed by blockvault');
    this.socket.destroy();
  }
}
