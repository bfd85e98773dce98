// Generates realistic VM disk images for the demo, tests and benchmarks:
// a GPT (or MBR) disk with a small FAT partition and an ext4 partition
// populated (mkfs.ext4 -d) from real system files plus incompressible data,
// its free space left as holes. Needs e2fsprogs, fdisk (sfdisk), dosfstools
// and mtools (scripts/setup.sh installs them).
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, copyFileSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeSync, readSync, fstatSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DiskSpec {
  path: string;
  sizeBytes: number;
  /** Bytes of real system files to copy into the ext4 partition. */
  systemBytes: number;
  /** Bytes of incompressible (random) data in /srv/data.bin. */
  randomBytes: number;
  table?: 'gpt' | 'mbr';
  seed?: string;
  /** Where to stage the ext4 tree and keep it (tests compare files with it); default: a temp dir removed afterwards. */
  stageDir?: string;
  /** Trees to copy system files from, in this order (another order gives another file mix). */
  systemRoots?: string[];
  /** ext4 block size (mkfs.ext4 -b); default mkfs's (1 KiB below 512 MiB, 4 KiB above, as on real VMs). */
  ext4BlockBytes?: number;
  /**
   * Other files written into the tree before the system files are copied (a
   * VM installed apart from another: the same files, others among them, so
   * a fresh mkfs lays the same files at other offsets).
   */
  otherFiles?: { bytes: number; seed: string };
}

export interface Partition { number: number; start: number; size: number; type: string }
export interface DiskInfo { path: string; sizeBytes: number; partitions: Partition[]; ext4: Partition; fat: Partition; stageDir: string | null }

const systemRootsDefault = ['/usr/share/doc', '/usr/share/perl', '/usr/lib/python3', '/usr/bin', '/usr/share/locale', '/usr/lib/x86_64-linux-gnu', '/usr/share'];

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A deterministic stream of incompressible bytes (AES-256-CTR of zeros). */
export function randomStream(seed: string): (bytes: number) => Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (bytes) => cipher.update(Buffer.alloc(bytes));
}

/** Copies real files (sorted walk, deterministic) into dir until `budget` bytes. */
function copySystemFiles(dir: string, budget: number, systemRoots: string[]): number {
  let copied = 0;
  const seen = new Set<string>();
  const staged = new Map<string, string>();
  const walk = (src: string, dst: string): void => {
    let names: string[];
    try {
      names = readdirSync(src).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (copied >= budget) return;
      const from = join(src, name);
      const to = join(dst, name);
      let st;
      try {
        st = lstatSync(from);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if (seen.has(from)) continue;
        seen.add(from);
        mkdirSync(to, { recursive: true });
        walk(from, to);
      } else if (st.isSymbolicLink()) {
        try { symlinkSync(readlinkSync(from), to); } catch { /* exists */ }
      } else if (st.isFile() && st.size <= 64 * 1024 * 1024) {
        // Hardlinked files stay hardlinks (one inode), as on the real filesystem.
        const inode = `${st.dev}:${st.ino}`;
        const linked = staged.get(inode);
        try {
          if (linked) {
            linkSync(linked, to);
          } else {
            copyFileSync(from, to);
            staged.set(inode, to);
            copied += st.size;
          }
        } catch { /* unreadable: skip */ }
      }
    }
  };
  for (const root of systemRoots) {
    if (copied >= budget) break;
    const dst = join(dir, root);
    mkdirSync(dst, { recursive: true });
    seen.add(root); // a later, enclosing root must not copy this tree again
    walk(root, dst);
  }
  return copied;
}

function writeRandomFile(path: string, bytes: number, seed: string): void {
  const next = randomStream(seed);
  const fd = openSync(path, 'w');
  for (let done = 0; done < bytes; ) {
    const n = Math.min(4 * 1024 * 1024, bytes - done);
    writeSync(fd, next(n));
    done += n;
  }
  closeSync(fd);
}

/**
 * Files of their own (text-like and random, 3 KiB to 1.5 MiB) in a directory
 * beside each system tree's, so that they are interleaved with the system
 * files when mkfs walks the tree.
 */
function writeOtherFiles(stage: string, bytes: number, seed: string, roots: string[]): void {
  const next = randomStream(`${seed}/other`);
  let written = 0;
  for (let k = 0; written < bytes; k++) {
    const dir = join(stage, roots[k % roots.length], `other-${seed}-${k % 7}`);
    mkdirSync(dir, { recursive: true });
    const size = Math.min(bytes - written, 3072 + (next(4).readUInt32LE(0) % (1536 * 1024)));
    const body = k % 2 === 0 ? next(size) : Buffer.from(`${seed} line ${k} `.repeat(Math.ceil(size / 16))).subarray(0, size);
    writeFileSync(join(dir, `file-${k}.dat`), body);
    written += size;
  }
}

/** Copies `src` into `dst` at `offset`, skipping all-zero 64 KiB blocks (keeps dst sparse). */
export function copyInto(dst: string, offset: number, src: string): void {
  const block = 64 * 1024;
  const inFd = openSync(src, 'r');
  const outFd = openSync(dst, 'r+');
  const buf = Buffer.alloc(block);
  const zero = Buffer.alloc(block);
  const size = fstatSync(inFd).size;
  for (let at = 0; at < size; at += block) {
    const n = readSync(inFd, buf, 0, block, at);
    if (!buf.subarray(0, n).equals(zero.subarray(0, n))) writeSync(outFd, buf, 0, n, offset + at);
  }
  closeSync(inFd);
  closeSync(outFd);
}

export function readPartitions(path: string): Partition[] {
  const table = JSON.parse(run('sfdisk', ['-J', path])) as { partitiontable: { partitions: Array<{ start: number; size: number; type: string }> } };
  return table.partitiontable.partitions.map((p, i) => ({ number: i + 1, start: p.start * 512, size: p.size * 512, type: p.type }));
}

export function makeVmDisk(spec: DiskSpec): DiskInfo {
  const work = mkdtempSync(join(tmpdir(), 'bv-disk-'));
  try {
    return buildVmDisk(spec, work, spec.stageDir ?? join(work, 'root'));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function buildVmDisk(spec: DiskSpec, work: string, stage: string): DiskInfo {
  const seed = spec.seed ?? 'blockvault';
  const table = spec.table ?? 'gpt';
  mkdirSync(join(stage, 'etc'), { recursive: true });
  mkdirSync(join(stage, 'srv'), { recursive: true });
  writeFileSync(join(stage, 'etc', 'hostname'), `${seed}\n`);
  symlinkSync('hostname', join(stage, 'etc', 'hostname.link'));
  if (spec.otherFiles) writeOtherFiles(stage, spec.otherFiles.bytes, spec.otherFiles.seed, spec.systemRoots ?? systemRootsDefault);
  copySystemFiles(stage, spec.systemBytes, spec.systemRoots ?? systemRootsDefault);
  if (spec.randomBytes > 0) writeRandomFile(join(stage, 'srv', 'data.bin'), spec.randomBytes, `${seed}/data`);

  rmSync(spec.path, { force: true });
  closeSync(openSync(spec.path, 'w'));
  run('truncate', ['-s', String(spec.sizeBytes), spec.path]);
  const script = table === 'gpt' ? 'label: gpt\n,32M,U\n,,L\n' : 'label: dos\n,32M,c,*\n,,83\n';
  execFileSync('sfdisk', ['-q', spec.path], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
  const partitions = readPartitions(spec.path);
  const [fat, ext4] = partitions;

  const fatImage = join(work, 'fat.img');
  run('mkfs.vfat', ['-C', '-n', 'BOOT', fatImage, String(fat.size / 1024)]);
  writeFileSync(join(work, 'README.TXT'), 'blockvault test disk\r\n');
  run('mcopy', ['-i', fatImage, join(work, 'README.TXT'), '::/README.TXT']);
  writeFileSync(join(work, 'long.txt'), 'a file with a long name\n'.repeat(2000)); // spans clusters
  run('mmd', ['-i', fatImage, '::/EFI']);
  run('mcopy', ['-i', fatImage, join(work, 'long.txt'), '::/EFI/Boot Loader Settings.txt']);
  copyInto(spec.path, fat.start, fatImage);

  const blockSize = spec.ext4BlockBytes ? ['-b', String(spec.ext4BlockBytes)] : [];
  run('mkfs.ext4', ['-F', '-q', ...blockSize, '-E', `offset=${ext4.start}`, '-d', stage, spec.path, `${Math.floor(ext4.size / 1024)}k`]);
  return { path: spec.path, sizeBytes: spec.sizeBytes, partitions, ext4, fat, stageDir: spec.stageDir ?? null };
}

export interface Extent { start: number; length: number }

/** Physical byte ranges of a file inside the ext4 partition (via debugfs). */
export function ext4FileExtents(disk: DiskInfo, file: string): Extent[] {
  const out = run('debugfs', ['-R', `blocks ${file}`, `${disk.path}?offset=${disk.ext4.start}`]);
  const blocks = out.trim().split(/\s+/).filter(Boolean).map(Number);
  const extents: Extent[] = [];
  for (const b of blocks) {
    const start = disk.ext4.start + b * 4096;
    const last = extents[extents.length - 1];
    if (last && last.start + last.length === start) last.length += 4096;
    else extents.push({ start, length: 4096 });
  }
  return extents;
}

/**
 * Simulates a day of guest activity: `writes` scattered overwrites of
 * `writeBytes` inside /srv/data.bin (so the filesystem stays consistent).
 * Returns the exact changed extents, sorted and merged.
 */
export function scatterWrites(disk: DiskInfo, writes: number, writeBytes: number, seed: string): Extent[] {
  const file = ext4FileExtents(disk, '/srv/data.bin');
  const slots: number[] = [];
  for (const e of file) for (let at = 0; at + writeBytes <= e.length; at += writeBytes) slots.push(e.start + at);
  const next = randomStream(`${seed}/writes`);
  const picks = new Set<number>();
  const pick = randomStream(`${seed}/picks`);
  while (picks.size < Math.min(writes, slots.length)) picks.add(slots[pick(4).readUInt32LE(0) % slots.length]);
  const fd = openSync(disk.path, 'r+');
  const sorted = [...picks].sort((a, b) => a - b);
  for (const at of sorted) writeSync(fd, next(writeBytes), 0, writeBytes, at);
  closeSync(fd);
  const extents: Extent[] = [];
  for (const start of sorted) {
    const last = extents[extents.length - 1];
    if (last && last.start + last.length === start) last.length += writeBytes;
    else extents.push({ start, length: writeBytes });
  }
  return extents;
}

/** Adds a file to the ext4 partition with debugfs (no mount, no root needed). */
export function addFile(disk: DiskInfo, localPath: string, imagePath: string): void {
  run('debugfs', ['-w', '-R', `write ${localPath} ${imagePath}`, `${disk.path}?offset=${disk.ext4.start}`]);
}

export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(4 * 1024 * 1024);
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
  }
  closeSync(fd);
  return hash.digest('hex');
}

/**
 * The exact byte ranges where two images of one size differ, at 4 KiB
 * granularity, merged: the changed-extents list a perfect tracker would give.
 */
export function diffImages(a: string, b: string, sizeBytes: number): Extent[] {
  const block = 4096;
  const piece = 4 * 1024 * 1024;
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  const ba = Buffer.alloc(piece);
  const bb = Buffer.alloc(piece);
  const extents: Extent[] = [];
  for (let at = 0; at < sizeBytes; at += piece) {
    const n = Math.min(piece, sizeBytes - at);
    readSync(fa, ba, 0, n, at);
    readSync(fb, bb, 0, n, at);
    if (ba.subarray(0, n).equals(bb.subarray(0, n))) continue;
    for (let k = 0; k < n; k += block) {
      const end = Math.min(n, k + block);
      if (ba.subarray(k, end).equals(bb.subarray(k, end))) continue;
      const last = extents[extents.length - 1];
      if (last && last.start + last.length === at + k) last.length += end - k;
      else extents.push({ start: at + k, length: end - k });
    }
  }
  closeSync(fa);
  closeSync(fb);
  return extents;
}
