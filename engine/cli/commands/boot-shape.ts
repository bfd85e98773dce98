// The QEMU arguments that give a booted VM restore point its saved shape:
// the machine description a running-VM backup keeps (QMP's, engine/qmp/
// machine.ts, or the one read from the libvirt domain XML). A point
// without one (backup --disk NAME=SOURCE ...) boots with defaults.
import type { GroupMachine } from '../../format/group-format.js';

const MiB = 1024 * 1024;

export function vmQemuArgs(machine: GroupMachine | undefined, memory: string | undefined): string[] {
  const savedMemory = typeof machine?.memoryBytes === 'number' && machine.memoryBytes >= MiB ? `${Math.floor(machine.memoryBytes / MiB)}M` : undefined;
  const cpus = typeof machine?.cpus === 'number' && machine.cpus >= 1 ? machine.cpus : 2;
  const type = typeof machine?.machineType === 'string' && /^[\w.-]+$/.test(machine.machineType) ? ['-machine', machine.machineType] : [];
  return [...type, '-m', memory ?? savedMemory ?? '1G', '-smp', String(cpus)];
}

/** The -drive if= for a disk: as the saved device model or bus had it (IDE stays IDE: a guest without virtio drivers still boots), else virtio. */
export function diskInterface(machine: GroupMachine | undefined, disk: string): 'virtio' | 'ide' {
  const disks = Array.isArray(machine?.disks) ? (machine.disks as Array<{ name?: string; driver?: string | null; bus?: string }>) : [];
  const d = disks.find((x) => x?.name === disk);
  return /^ide-/.test(d?.driver ?? '') || d?.bus === 'ide' ? 'ide' : 'virtio';
}
