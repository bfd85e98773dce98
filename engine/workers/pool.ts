// A fixed pool of chunk workers (one per core). Each request goes to the
// worker with the fewest requests outstanding; callers bound how many
// requests they keep in flight, which bounds memory.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AssertionError } from '../core/errors.js';
import type { CompressReply, CompressRequest, DecodeReply, DecodeRequest, HashReply, HashRequest, SlabCompressRequest, SlabHashReply, SlabHashRequest, StoredChunks, WorkRequest } from './messages.js';

let slabIds = 0;

function workerPath(): string {
  const beside = fileURLToPath(new URL('./chunk-worker.js', import.meta.url));
  if (existsSync(beside)) return beside;
  // Running from TypeScript sources (vitest): use the build made by setup.
  const built = fileURLToPath(new URL('../../dist/engine/workers/chunk-worker.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new AssertionError(`chunk worker not found at ${beside} or ${built}: run npm run build`);
}

/**
 * Workers worth starting for `bytes` of reading (null: unknown, a stream):
 * one per core, but no more than one per 32 MiB. Each worker costs ~60 ms of
 * CPU to start (measured here: its module loading), about what hashing and
 * compressing 20-30 MB takes, so a small increment is done sooner, and
 * leaves more of the machine to backups running beside it, with fewer.
 */
export function workersFor(bytes: number | null, cores = availableParallelism()): number {
  const all = Math.max(1, cores);
  if (bytes === null) return all;
  return Math.max(1, Math.min(all, Math.ceil(bytes / (32 * 1024 * 1024))));
}

interface Slot { worker: Worker; outstanding: number }
type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  /** Slabs shared so far: a worker started later gets them before any request. */
  private readonly shared: Array<{ id: number; slab: SharedArrayBuffer }> = [];

  constructor(size = Math.max(1, availableParallelism())) {
    this.grow(size);
  }

  /**
   * Starts workers until there are `size`. A backup starts one at once (its
   * start-up overlaps opening the repository and planning) and the rest once
   * it knows how much it will read (workersFor).
   */
  grow(size: number): void {
    const path = workerPath();
    while (this.slots.length < size) {
      const worker = new Worker(path);
      const slot: Slot = { worker, outstanding: 0 };
      worker.on('message', (msg: { seq: number; reply?: unknown; error?: string }) => {
        slot.outstanding -= 1;
        const p = this.pending.get(msg.seq);
        this.pending.delete(msg.seq);
        if (!p) return;
        if (msg.error) p.reject(new AssertionError(`chunk worker failed: ${msg.error}`));
        else p.resolve(msg.reply);
      });
      worker.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
      this.slots.push(slot);
      // Requests reach a worker in order: registered before anything can name them.
      for (const { id, slab } of this.shared) void this.run({ op: 'slab', id, slab }, [], slot);
    }
  }

  get size(): number {
    return this.slots.length;
  }

  private run<T>(req: WorkRequest, transfer: ArrayBuffer[], on?: Slot): Promise<T> {
    const slot = on ?? this.slots.reduce((a, b) => (b.outstanding < a.outstanding ? b : a));
    const seq = ++this.seq;
    slot.outstanding += 1;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      slot.worker.postMessage({ seq, req }, transfer);
    });
  }

  hash(req: Omit<HashRequest, 'op'>): Promise<HashReply> {
    return this.run({ op: 'hash', ...req }, [req.data]);
  }
  compress(req: Omit<CompressRequest, 'op'>): Promise<CompressReply> {
    return this.run({ op: 'compress', ...req }, [req.data, req.out]);
  }
  decode(req: Omit<DecodeRequest, 'op'>): Promise<DecodeReply> {
    return this.run({ op: 'decode', ...req }, req.output ? [req.input, req.ids, req.output] : [req.input, req.ids]);
  }
  slabHash(req: Omit<SlabHashRequest, 'op'>): Promise<SlabHashReply> {
    return this.run({ op: 'slab-hash', ...req }, []);
  }
  slabCompress(req: Omit<SlabCompressRequest, 'op'>): Promise<StoredChunks> {
    return this.run({ op: 'slab-compress', ...req }, []);
  }
  /** Shares `slab` with every worker (and any started later); requests then name it by the returned id. */
  async shareSlab(slab: SharedArrayBuffer): Promise<number> {
    const id = ++slabIds;
    this.shared.push({ id, slab });
    await Promise.all(this.slots.map((slot) => this.run({ op: 'slab', id, slab }, [], slot)));
    return id;
  }
  /** Forgets a shared slab everywhere, after the requests already sent (a worker takes them in order). */
  async unshareSlab(id: number): Promise<void> {
    const at = this.shared.findIndex((s) => s.id === id);
    if (at >= 0) this.shared.splice(at, 1);
    await Promise.all(this.slots.map((slot) => this.run({ op: 'unslab', id }, [], slot)));
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
