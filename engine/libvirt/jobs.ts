// A domain's backup job as libvirt reports it. Whose job it is comes from
// the job itself (`backup-dumpxml`): blockvault's NBD socket lives in its
// work directory, blockvault-libvirt-<key>, so a job a dead or failed run
// left behind is recognised without trusting any local state, and anybody
// else's job is left alone.
// `domjobabort` only asks QEMU to cancel the job's block jobs; libvirt ends
// the job when their cancel events arrive, later on a loaded host, and an
// abort can fail while libvirt is busy with the domain. So ending a job means
// aborting it until `domjobinfo` no longer lists it, within a bound.
import { BlockvaultError } from '../core/errors.js';
import type { Virsh } from './virsh.js';

export const jobEndMsMax = 60_000;
const pollMs = 250;
const reabortMs = 2_000;

export async function backupJobRunning(virsh: Virsh, domain: string): Promise<boolean> {
  const info = await virsh.run(['domjobinfo', domain]).catch(() => '');
  return /Operation:\s+Backup/.test(info);
}

/** The NBD socket of the domain's backup job, or null when it runs none. */
export async function backupJobSocket(virsh: Virsh, domain: string): Promise<string | null> {
  if (!(await backupJobRunning(virsh, domain))) return null;
  const xml = await virsh.run(['backup-dumpxml', domain]).catch(() => '');
  return /<server\b[^>]*\bsocket='([^']*)'/.exec(xml)?.[1] ?? '';
}

export function workDirName(key: string): string {
  return `blockvault-libvirt-${key}`;
}

/** Aborts the domain's backup job and returns once libvirt no longer lists it. */
export async function endBackupJob(virsh: Virsh, domain: string, msMax = jobEndMsMax): Promise<void> {
  let lastError = '';
  let abortedAt = 0;
  for (const end = Date.now() + msMax; await backupJobRunning(virsh, domain);) {
    if (Date.now() > end) throw new BlockvaultError('HYPERVISOR', `domain ${domain}: its backup job is still listed ${msMax / 1000} s after blockvault aborted it${lastError ? ` (${lastError})` : ''}; end it with virsh domjobabort ${domain}`);
    if (Date.now() - abortedAt >= reabortMs) {
      abortedAt = Date.now();
      await virsh.run(['domjobabort', domain]).catch((err: Error) => { lastError = err.message; });
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
