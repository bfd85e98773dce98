import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Bench } from 'tinybench';
import { runBackup } from '../../backup/backup.js';
import { initDigests, isAllZero, sha256, xxh64 } from '../../core/digest.js';
import { BlockvaultError } from '../../core/errors.js';
import { zstdLevelDefault } from '../../core/limits.js';
import { Repository, initRepository } from '../../repo/repository.js';
import { runRestore } from '../../restore/restore.js';
import { openTarget } from '../../restore/target.js';
import type { Source } from '../../source/source.js';
import { compressChunks, decodeChunks } from '../../workers/chunk-work.js';
import { WorkerPool } from '../../workers/pool.js';
import { intOption, parse } from '../args.js';
import { printJson, say, type Command } from '../command.js';

const chunkBytes = 64 * 1024;

/** 64 KiB of text-like data: compressible about like system files. */
function textChunk(seed: number): Buffer {
  const words = ['backup', 'chunk', 'disk', 'restore', 'virtual', 'machine', 'kernel', 'ext4', 'qemu', 'block', '\n', 'the', 'of', 'a'];
  let s = '';
  let x = seed;
  while (s.length < chunkBytes) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    s += `${words[x % words.length]} `;
  }
  return Buffer.from(s.slice(0, chunkBytes));
}

interface Row { name: string; mbPerSecond: number | null; opsPerSecond: number }

async function hotPaths(seconds: number, level: number): Promise<Row[]> {
  await initDigests();
  const chunks = Array.from({ length: 16 }, (_, i) => textChunk(i));
  const zeroChunk = Buffer.alloc(chunkBytes);
  const data = Buffer.concat(chunks);
  const ab = () => data.buffer.slice(data.byteOffset, data.byteOffset + data.length) as ArrayBuffer;
  const ranges = chunks.flatMap((_, i) => [i * chunkBytes, chunkBytes]);
  const packed = compressChunks({ op: 'compress', data: ab(), out: new ArrayBuffer(data.length), ranges, level });
  const offsets: number[] = [];
  packed.storedBytes.reduce((at, n) => { offsets.push(at); return at + n; }, 0);
  const ids = Buffer.concat(chunks.map((c) => sha256(c)));
  const decode = (checkContent: boolean) => decodeChunks({ op: 'decode', input: packed.payloads, offsets, storedBytes: packed.storedBytes, rawBytes: chunks.map(() => chunkBytes), codecs: packed.codecs, storedXxh64: packed.storedXxh64, ids: ids.buffer.slice(ids.byteOffset, ids.byteOffset + ids.length) as ArrayBuffer, checkContent });
  const tasks: Array<[string, number | null, () => unknown]> = [
    ['SHA-256 (chunk ids)', chunkBytes, () => sha256(chunks[0])],
    ['XXH64 (stored-bytes checks)', chunkBytes, () => xxh64(chunks[1])],
    ['zero-chunk detection (full scan)', chunkBytes, () => isAllZero(zeroChunk)],
    [`zstd level ${level} compress`, data.length, () => compressChunks({ op: 'compress', data: ab(), out: new ArrayBuffer(data.length), ranges, level })],
    ['zstd decompress + XXH64 + SHA-256 (restore path)', data.length, () => decode(true)],
    ['zstd decompress + XXH64 (mount path)', data.length, () => decode(false)],
  ];
  const bench = new Bench({ time: (seconds * 1000) / (tasks.length + 2), warmupTime: 50 });
  for (const [name, , fn] of tasks) bench.add(name, fn);
  await bench.run();
  return bench.tasks.map((t, i) => {
    const p50 = (t.result as unknown as { latency: { p50: number } }).latency.p50;
    const bytes = tasks[i][1];
    return { name: t.name, mbPerSecond: bytes ? bytes / 1e6 / (p50 / 1000) : null, opsPerSecond: 1000 / p50 };
  });
}

/** Backs up and restores generated data in a side repository next to `repoRoot`, then removes it. */
async function storagePaths(repoRoot: string, level: number): Promise<Row[]> {
  const side = mkdtempSync(join(dirname(resolve(repoRoot)), '.blockvault-bench-'));
  try {
    await initRepository(join(side, 'repo'), { zstdLevel: level });
    const repo = await Repository.open(join(side, 'repo'), { writer: { what: 'bench', lockWaitSeconds: 0 } });
    const pool = new WorkerPool();
    try {
      const sizeBytes = 256 * 1024 * 1024;
      const text = Buffer.concat(Array.from({ length: 16 }, (_, i) => textChunk(i)));
      const source: Source = {
        description: 'generated', sizeBytes, dataExtents: null,
        async read(into, offset) {
          // unique data: text with the offset stamped into every 4 KiB, a quarter random
          for (let at = 0; at < into.length; at += 4096) {
            const piece = (offset + at) % (4 * 4096) === 0 ? randomBytes(4096) : text.subarray((offset + at) % text.length, (offset + at) % text.length + 4096);
            into.set(piece.subarray(0, Math.min(4096, into.length - at)), at);
            if (into.length - at >= 8) Buffer.from(into.buffer, into.byteOffset + at, 8).writeDoubleLE(offset + at);
          }
          return into.length;
        },
        async close() {},
      };
      const backup = await runBackup(repo, { vm: 'bench', disk: 'bench', source, pool });
      const entry = repo.points.list()[0];
      const restored = await runRestore(repo, entry, await openTarget(join(side, 'restored.raw'), sizeBytes, false, false), pool);
      return [
        { name: 'backup to this filesystem (new data)', mbPerSecond: sizeBytes / 1e6 / backup.seconds, opsPerSecond: 0 },
        { name: 'restore from this filesystem', mbPerSecond: sizeBytes / 1e6 / restored.seconds, opsPerSecond: 0 },
      ];
    } finally {
      await pool.close();
      await repo.close();
    }
  } finally {
    rmSync(side, { recursive: true, force: true });
  }
}

export const benchCommand: Command = {
  name: 'bench',
  help: `Usage: blockvault bench [-r <repo>] [--seconds 20] [--json]

Measures the hot paths of a backup on this machine, like
proxmox-backup-client benchmark: SHA-256, XXH64, zero detection, zstd at the
repository's level, and the restore path (decompress + verify), in MB/s of
one core. With -r, also backs up and restores 256 MiB of generated data in a
temporary side repository next to <repo> (same filesystem), removed after;
existing restore points are never touched. The developers' full suite
(peers side by side, whole runs) is \`npm run bench\` (docs/BENCHMARKS.md).

Options:
  -r, --repo PATH    also measure storage next to this repository
  --seconds N        time budget for the hot paths (default 20)
  --json             machine-readable results`,
  async run(argv) {
    const { values } = parse('bench', argv, { seconds: { type: 'string' } });
    const seconds = intOption(values, 'seconds', 20);
    if (seconds < 1 || seconds > 600) throw new BlockvaultError('USAGE', `--seconds ${seconds}: from 1 to 600`);
    const repoArg = (values.repo as string | undefined) ?? process.env.BLOCKVAULT_REPO;
    let level = zstdLevelDefault;
    if (repoArg) {
      const repo = await Repository.open(repoArg);
      level = repo.config.zstdLevel;
      await repo.close();
    }
    const rows = await hotPaths(seconds, level);
    if (repoArg) rows.push(...(await storagePaths(repoArg, level)));
    if (values.json) {
      printJson({ machine: { cpus: (await import('node:os')).cpus().length, node: process.version }, results: rows });
      return 0;
    }
    say(`${'hot path'.padEnd(44)} ${'speed'.padStart(14)}`);
    for (const r of rows) say(`${r.name.padEnd(44)} ${r.mbPerSecond === null ? `${r.opsPerSecond.toFixed(0)} op/s`.padStart(14) : `${r.mbPerSecond.toFixed(0)} MB/s`.padStart(14)}`);
    return 0;
  },
};
