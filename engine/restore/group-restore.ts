// Restoring a VM restore point of several disks: each disk into
// <dir>/<disk>.raw (or <disk>.qcow2, converted by qemu-img), one after
// another, then the VM's saved configuration (<vm>.vm.json; a libvirt
// domain also as <vm>.xml). If any step fails, the files this run wrote are
// removed again, so the directory holds all of them or none.
import { execFile } from 'node:child_process';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { BlockvaultError } from '../core/errors.js';
import { checkedFirmwareBytes } from '../libvirt/firmware.js';
import type { GroupEntry } from '../repo/chunk-index.js';
import { readGroup } from '../repo/group-store.js';
import type { Repository } from '../repo/repository.js';
import type { WorkerPool } from '../workers/pool.js';
import { runRestore, type RestoreResult } from './restore.js';
import { openTarget } from './target.js';

const run = promisify(execFile);

export type DiskFormat = 'raw' | 'qcow2';
export interface GroupRestoreResult {
  group: string; vm: string; dir: string; format: DiskFormat;
  disks: Array<RestoreResult & { disk: string; target: string }>;
  /** The configuration files written (none for a VM restore point without one). */
  config: string[];
  consistency: string | null;
}

async function refuseExisting(paths: string[], force: boolean): Promise<void> {
  if (force) return;
  for (const p of paths) {
    if (await stat(p).catch(() => null)) throw new BlockvaultError('BAD_INPUT', `target ${p} exists; use --force to replace it`);
  }
}

/** A raw restore converted to qcow2 beside it (the raw goes when the qcow2 is complete). */
async function toQcow2(raw: string, target: string): Promise<void> {
  await run('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, target]).catch(async (err: Error & { stderr?: string; code?: string }) => {
    await rm(target, { force: true });
    throw new BlockvaultError(err.code === 'ENOENT' ? 'USAGE' : 'TARGET_IO', err.code === 'ENOENT' ? 'cannot run qemu-img (install qemu-utils) for --format qcow2' : `qemu-img convert to ${target}: ${(err.stderr ?? err.message).trim()}`);
  }).finally(() => rm(raw, { force: true }));
}

interface SavedFirmware { role: string; path: string; base64: string; sha256: string }

/** The firmware state (UEFI variables, TPM) under <dir>/<vm>.firmware/<role>/<its original path>, each checked against its SHA-256. */
async function writeFirmware(saved: unknown, root: string, what: string): Promise<string[]> {
  if (!Array.isArray(saved) || saved.length === 0) return [];
  const written: string[] = [];
  for (const f of saved as SavedFirmware[]) {
    const bytes = checkedFirmwareBytes(f, what);
    const target = join(root, f.role, normalize(`/${f.path}`));
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, bytes);
    written.push(target);
  }
  written.push(root);
  return written;
}

export async function runGroupRestore(repo: Repository, group: GroupEntry, dir: string, pool: WorkerPool,
  options: { force: boolean; durable: boolean; signal?: AbortSignal; format?: DiskFormat }): Promise<GroupRestoreResult> {
  const format = options.format ?? 'raw';
  const st = await stat(dir).catch(() => null);
  if (st && !st.isDirectory()) throw new BlockvaultError('BAD_INPUT', `target ${dir} exists and is not a directory: a VM restore point is restored into a directory, one <disk>.${format} per disk`);
  const header = await readGroup(repo.storage, group.vm, group.id);
  const entries = group.disks.map((d) => {
    const entry = repo.index.point(d.point);
    if (!entry) throw new BlockvaultError('CHUNK_MISSING', `VM restore point ${group.vm}@${group.id}: its disk ${d.disk} (restore point ${d.point}) is missing`);
    return entry;
  });
  const configFiles = header.machine ? [join(dir, `${group.vm}.vm.json`), ...(header.machine.kind === 'libvirt' ? [join(dir, `${group.vm}.xml`)] : [])] : [];
  const firmwareRoot = Array.isArray(header.machine?.firmware) && header.machine.firmware.length > 0 ? [join(dir, `${group.vm}.firmware`)] : [];
  await refuseExisting([...entries.map((e) => join(dir, `${e.disk}.${format}`)), ...configFiles, ...firmwareRoot], options.force);
  await mkdir(dir, { recursive: true }).catch((err) => { throw new BlockvaultError('TARGET_IO', `cannot create ${dir}: ${(err as Error).message}`); });
  const done: GroupRestoreResult['disks'] = [];
  const written: string[] = [];
  try {
    for (const entry of entries) {
      const target = join(dir, `${entry.disk}.${format}`);
      const raw = format === 'raw' ? target : join(dir, `.${entry.disk}.raw.blockvault-convert`);
      const result = await runRestore(repo, entry, await openTarget(raw, entry.sizeBytes, true, options.durable), pool, undefined, options.signal);
      if (format === 'qcow2') await toQcow2(raw, target);
      written.push(target);
      done.push({ ...result, disk: entry.disk, target });
    }
    if (header.machine) {
      const saved = { vm: group.vm, group: group.id, time: group.time, consistency: header.consistency, disks: entries.map((e) => ({ disk: e.disk, file: `${e.disk}.${format}`, format, sizeBytes: e.sizeBytes })), machine: header.machine };
      await writeFile(configFiles[0], `${JSON.stringify(saved, null, 2)}\n`);
      written.push(configFiles[0]);
      if (header.machine.kind === 'libvirt') { await writeFile(configFiles[1], String(header.machine.domainXml)); written.push(configFiles[1]); }
      written.push(...await writeFirmware(header.machine.firmware, join(dir, `${group.vm}.firmware`), `${group.vm}@${group.id}`));
    }
  } catch (err) {
    for (const p of written) await rm(p, { force: true, recursive: true });
    throw err instanceof BlockvaultError && done.length > 0
      ? new BlockvaultError(err.code, `${err.message}; the ${done.length} disk(s) already restored were removed again`, { cause: err })
      : err;
  }
  return { group: group.id, vm: group.vm, dir, format, disks: done, config: [...configFiles, ...firmwareRoot], consistency: header.consistency ?? null };
}
