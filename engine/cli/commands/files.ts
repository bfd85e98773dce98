import { chmod, lutimes, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { openPartitionFiles, type PartitionFiles } from '../../../mount/partition-files.js';
import { parsePartitions, partitionTableBytes } from '../../../mount/partitions.js';
import { BlockvaultError } from '../../core/errors.js';
import { humanBytes, plural } from '../../core/human.js';
import { ChunkCache } from '../../read/chunk-cache.js';
import { PointReader } from '../../read/point-reader.js';
import { Repository } from '../../repo/repository.js';
import { WorkerPool } from '../../workers/pool.js';
import { parse, repoPath } from '../args.js';
import { printJson, say, type Command } from '../command.js';

const copyPieceBytes = 1024 * 1024;

async function openFiles(repo: Repository, pool: WorkerPool, spec: string, partArg: string | undefined): Promise<PartitionFiles> {
  const entry = repo.points.resolve(spec);
  const reader = new PointReader(repo, pool, await repo.points.open(entry), new ChunkCache(128 * 1024 * 1024, repo.config.chunkBytes), `${entry.vm}/${entry.disk}@${entry.id}`);
  const partitions = parsePartitions(await reader.readAt(0, Math.min(partitionTableBytes, reader.sizeBytes)), reader.sizeBytes);
  const candidates = partitions.length ? partitions : [{ number: 0, startBytes: 0, sizeBytes: reader.sizeBytes, type: '', name: '' }];
  if (partArg !== undefined) {
    const part = candidates.find((p) => p.number === Number(partArg));
    if (!part) throw new BlockvaultError('BAD_INPUT', `--part ${partArg}: ${spec} has partitions ${partitions.map((p) => p.number).join(', ') || '(none)'}`);
    const files = await openPartitionFiles(reader, part);
    if (!files) throw new BlockvaultError('BAD_INPUT', `partition ${partArg} of ${spec} holds no filesystem blockvault reads (ext2/3/4, FAT)`);
    return files;
  }
  const found: PartitionFiles[] = [];
  for (const p of candidates) {
    const files = await openPartitionFiles(reader, p);
    if (files) found.push(files);
  }
  if (found.length === 1) return found[0];
  if (found.length === 0) throw new BlockvaultError('BAD_INPUT', `${spec}: no partition with a filesystem blockvault reads (ext2/3/4, FAT)`);
  throw new BlockvaultError('USAGE', `${spec}: several partitions hold filesystems (${found.map((f) => f.partition.number).join(', ')}); choose one with --part`);
}

function modeString(mode: number): string {
  const type = (mode & 0o170000) === 0o040000 ? 'd' : (mode & 0o170000) === 0o120000 ? 'l' : '-';
  const bits = 'rwxrwxrwx';
  return type + [...bits].map((c, i) => (mode & (1 << (8 - i)) ? c : '-')).join('');
}

/** A failed write of the copy, as the user's error: the path, and "exists" rather than a stack. */
function writeError(err: unknown, to: string): BlockvaultError {
  const code = (err as NodeJS.ErrnoException).code;
  if (err instanceof BlockvaultError) return err;
  if (code === 'EEXIST') return new BlockvaultError('BAD_INPUT', `cannot write ${to}: it exists (files get never overwrites)`, { cause: err });
  if (code === 'ENOTDIR') return new BlockvaultError('BAD_INPUT', `cannot write ${to}: a part of that path is a file, not a directory`, { cause: err });
  if (code === 'ENOSPC' || code === 'EDQUOT') return new BlockvaultError('NO_SPACE', `no space left on device writing ${to}`, { cause: err });
  return new BlockvaultError('TARGET_IO', `cannot write ${to}: ${(err as Error).message}`, { cause: err });
}

/** Copies a file, directory tree or symlink out, keeping modes, times and symlinks. */
async function copyOut(files: PartitionFiles, from: string, to: string, counters: { files: number; bytes: number }): Promise<void> {
  const st = await files.stat(from);
  if (st.isSymlink) {
    await symlink(await files.readlink(from), to).catch((err) => { throw writeError(err, to); });
    await lutimes(to, st.atime, st.mtime).catch(() => undefined);
    return;
  }
  if (st.isDirectory) {
    await mkdir(to, { recursive: true }).catch((err) => { throw writeError(err, to); });
    for (const name of await files.readdir(from)) {
      if (name === '.' || name === '..') continue;
      await copyOut(files, `${from === '/' ? '' : from}/${name}`, join(to, name), counters);
    }
  } else {
    const parts: Buffer[] = [];
    for (let at = 0; at < st.size; at += copyPieceBytes) parts.push(await files.read(from, at, Math.min(copyPieceBytes, st.size - at)));
    await writeFile(to, Buffer.concat(parts), { flag: 'wx' }).catch((err) => { throw writeError(err, to); });
    counters.files += 1;
    counters.bytes += st.size;
  }
  await chmod(to, st.mode & 0o7777).catch((err) => { throw writeError(err, to); });
  await utimes(to, st.atime, st.mtime).catch((err) => { throw writeError(err, to); });
}

export const filesCommand: Command = {
  name: 'files',
  help: `Usage: blockvault files ls  -r <repo> <vm>/<disk>@<id|latest> [--part N] [<path>]
       blockvault files get -r <repo> <vm>/<disk>@<id|latest> [--part N] <path> <target-dir>

Reads the ext2/3/4 or FAT filesystem inside a restore point directly (no
mount, no root). --part picks the partition; by default the only partition
holding a filesystem blockvault reads. 'get' copies a file or a whole directory tree into
<target-dir>, keeping modes, times and symlinks, and never overwrites.

Options:
  -r, --repo PATH   repository (or BLOCKVAULT_REPO)
  --part N          the partition to read (see part<N>.raw in the mount);
                    a disk with no partition table is read as one filesystem
  --json            ls: one object per entry; get: counts of files and bytes

Examples:
  blockvault files ls  -r /srv/bv web01/sda@latest /etc
  blockvault files get -r /srv/bv web01/sda@latest --part 2 /etc/nginx ./restored/`,
  async run(argv) {
    const { values, positionals } = parse('files', argv, { part: { type: 'string' } });
    const [action, spec, ...rest] = positionals;
    if ((action !== 'ls' && action !== 'get') || !spec) throw new BlockvaultError('USAGE', 'expected "ls" or "get" and a restore point (see blockvault files --help)');
    const repo = await Repository.open(repoPath(values));
    const pool = new WorkerPool();
    try {
      const files = await openFiles(repo, pool, spec, values.part as string | undefined);
      if (action === 'ls') {
        const path = rest[0] ?? '/';
        const st = await files.stat(path);
        const names = st.isDirectory ? (await files.readdir(path)).filter((n) => n !== '.' && n !== '..').sort() : [basename(path)];
        const base = st.isDirectory ? path.replace(/\/$/, '') : path.slice(0, path.lastIndexOf('/'));
        const rows = [];
        for (const name of names) {
          const s = await files.stat(`${base}/${name}`);
          rows.push({ name, mode: s.mode, size: s.size, mtime: s.mtime.toISOString(), uid: s.uid, gid: s.gid, ...(s.isSymlink ? { target: await files.readlink(`${base}/${name}`) } : {}) });
        }
        if (values.json) printJson(rows);
        else for (const r of rows) say(`${modeString(r.mode)} ${String(r.uid).padStart(5)} ${String(r.gid).padStart(5)} ${humanBytes(r.size).padStart(10)} ${r.mtime.slice(0, 16).replace('T', ' ')} ${r.name}${r.target ? ` -> ${r.target}` : ''}`);
        return 0;
      }
      if (rest.length !== 2) throw new BlockvaultError('USAGE', 'get: expected <path> and <target-dir>');
      const [path, targetDir] = rest;
      await mkdir(targetDir, { recursive: true }).catch((err) => {
        throw (err as NodeJS.ErrnoException).code === 'EEXIST'
          ? new BlockvaultError('BAD_INPUT', `target directory ${targetDir} exists and is not a directory`)
          : writeError(err, targetDir);
      });
      const counters = { files: 0, bytes: 0 };
      await copyOut(files, path, join(targetDir, basename(path) || 'root'), counters);
      if (values.json) printJson(counters);
      else say(`copied ${plural(counters.files, 'file')}, ${humanBytes(counters.bytes)}, from ${spec}:${path} to ${targetDir}`);
      return 0;
    } finally {
      await pool.close();
      await repo.close();
    }
  },
};
