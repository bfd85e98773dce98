// Serves a qemu-supported image (qcow2, vmdk, vhdx, vdi, ...) read-only over
// NBD on a private unix socket, for the duration of one backup.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { BlockvaultError } from '../core/errors.js';
import type { NbdAddress } from './uri.js';
import { isAlive } from '../core/process-alive.js';

const formatsByExtension: Record<string, string> = { '.qcow2': 'qcow2', '.qcow': 'qcow2', '.vmdk': 'vmdk', '.vhdx': 'vhdx', '.vdi': 'vdi', '.vpc': 'vpc', '.vhd': 'vpc' };
const startSecondsMax = 15;

/** The image format: --format, else the file extension, else raw. */
export function imageFormat(path: string, format?: string): string {
  return format ?? formatsByExtension[extname(path).toLowerCase()] ?? 'raw';
}

export interface QemuNbd {
  address: NbdAddress;
  /** Why qemu-nbd exited, or null while it runs. */
  exitReason(): string | null;
  stop(): Promise<void>;
}

/** Private socket directories are named for the process that made them: blockvault-nbd-<pid>-XXXXXX. */
const socketDirPattern = /^blockvault-nbd-(\d+)-/;

/**
 * Removes the socket directories of blockvault processes that died without
 * stopping their qemu-nbd (killed with SIGKILL, say: qemu-nbd itself exits
 * once its client is gone). Returns the directories removed.
 */
export function sweepStaleSocketDirs(dir = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const pid = Number(socketDirPattern.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

export async function startQemuNbd(image: string, format: string, bitmap?: string): Promise<QemuNbd> {
  if (!existsSync(image)) throw new BlockvaultError('BAD_INPUT', `source ${image} does not exist`);
  sweepStaleSocketDirs();
  const dir = mkdtempSync(join(tmpdir(), `blockvault-nbd-${process.pid}-`));
  const socket = join(dir, 'nbd.sock');
  const args = ['--read-only', '--format', format, '--socket', socket, '--shared', '2', ...(bitmap ? ['--bitmap', bitmap] : []), image];
  let child: ChildProcess;
  try {
    child = spawn('qemu-nbd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new BlockvaultError('SOURCE_IO', `cannot start qemu-nbd (install qemu-utils): ${(err as Error).message}`);
  }
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  child.on('error', () => undefined);
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + startSecondsMax * 1000;
  while (!existsSync(socket)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      const why = stderr.trim() || (child.exitCode === null ? 'timed out' : `exit ${child.exitCode}`);
      throw new BlockvaultError('SOURCE_IO', `qemu-nbd could not serve ${image} as ${format}${bitmap ? ` with bitmap ${bitmap}` : ''}: ${why}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const exitReason = () => (child.exitCode === null ? null : stderr.trim() || `exit ${child.exitCode}`);
  return { address: { transport: 'unix', socket, exportName: '' }, exitReason, stop };
}
