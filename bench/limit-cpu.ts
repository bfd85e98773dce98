// A machine limit for the cold benchmark: the CPU-bound work of a full
// backup done with the same libraries outside blockvault. The data regions
// of an image are read in 4 MiB pieces and, on one worker thread per core,
// every non-zero 64 KiB chunk is hashed (SHA-256, node:crypto) and
// compressed (zstd level 1, zstd-napi); nothing is deduplicated, indexed or
// written. Its whole-process wall time is the floor for a full backup.
// Run: node dist/bench/limit-cpu.js <image> [level]
import { createHash } from 'node:crypto';
import { closeSync, openSync, read, fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { nativeApi } from '../engine/core/native.js';

const pieceBytes = 4 * 1024 * 1024;
const chunkBytes = 64 * 1024;

function work(level: number): void {
  const zstd = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');
  const cctx = new zstd.CCtx();
  cctx.setParameter(zstd.CParameter.compressionLevel, level);
  const out = Buffer.allocUnsafe(chunkBytes * 2);
  const zeros = Buffer.alloc(chunkBytes);
  parentPort!.on('message', (piece: { seq: number; data: ArrayBuffer; length: number }) => {
    let stored = 0;
    for (let at = 0; at < piece.length; at += chunkBytes) {
      const chunk = new Uint8Array(piece.data, at, Math.min(chunkBytes, piece.length - at));
      if (Buffer.compare(chunk, zeros.subarray(0, chunk.length)) === 0) continue;
      createHash('sha256').update(chunk).digest();
      stored += cctx.compress2(out, chunk);
    }
    parentPort!.postMessage({ seq: piece.seq, data: piece.data, stored }, [piece.data]);
  });
}

async function main(image: string, level: number): Promise<void> {
  const fd = openSync(image, 'r');
  const size = fstatSync(fd).size;
  const flat = nativeApi()?.dataExtents(fd, size) ?? [0, size];
  const pieces: Array<[number, number]> = [];
  for (let i = 0; i < flat.length; i += 2) for (let at = flat[i]; at < flat[i + 1]; at += pieceBytes) pieces.push([at, Math.min(flat[i + 1], at + pieceBytes)]);
  const workers = Array.from({ length: availableParallelism() }, () => new Worker(new URL(import.meta.url), { workerData: { level } }));
  const waiting = new Map<number, (reply: { data: ArrayBuffer; stored: number }) => void>();
  for (const w of workers) w.on('message', (msg: { seq: number; data: ArrayBuffer; stored: number }) => { waiting.get(msg.seq)!(msg); waiting.delete(msg.seq); });
  let next = 0;
  let seq = 0;
  let stored = 0;
  // Two pieces per worker in flight: one being worked on, one read ahead.
  await Promise.all(workers.flatMap((worker) => [0, 1].map(async () => {
    let buffer = new ArrayBuffer(pieceBytes);
    while (next < pieces.length) {
      const [start, end] = pieces[next++];
      const length = await new Promise<number>((resolve, reject) => read(fd, new Uint8Array(buffer), 0, end - start, start, (err, n) => (err ? reject(err) : resolve(n))));
      const reply = await new Promise<{ data: ArrayBuffer; stored: number }>((resolve) => {
        const id = ++seq;
        waiting.set(id, resolve);
        worker.postMessage({ seq: id, data: buffer, length }, [buffer]);
      });
      buffer = reply.data;
      stored += reply.stored;
    }
  })));
  closeSync(fd);
  await Promise.all(workers.map((w) => w.terminate()));
  process.stdout.write(`${stored}\n`);
}

if (isMainThread) await main(process.argv[2], Number(process.argv[3] ?? 1));
else work((workerData as { level: number }).level);
