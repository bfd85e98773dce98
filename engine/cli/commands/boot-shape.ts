// The QEMU arguments that give a booted VM restore point its saved shape:
// the machine description a running-VM backup keeps (engine/qmp/machine.ts).
// A point without one (backup --disk NAME=SOURCE ...) boots with defaults.
import type { GroupMachine } from '../../format/group-format.js';

const MiB = 1024 * 1024;

export function vmQemuArgs(machine: GroupMachine | undefined, memory: string | undefined): string[] {
  const m = machine?.kind === 'qemu' ? machine : undefined;
  const savedMemory = typeof m?.memoryBytes === 'number' && m.memoryBytes >= MiB ? `${Math.floor(m.memoryBytes / MiB)}M` : undefined;
  const cpus = typeof m?.cpus === 'number' && m.cpus >= 1 ? m.cpus : 2;
  const type = typeof m?.machineType === 'string' && /^[\w.-]+$/.test(m.machineType) ? ['-machine', m.machineType] : [];
  return [...type, '-m', memory ?? savedMemory ?? '1G', '-smp', String(cpus)];
}

/** The -drive if= for a disk: as the saved device model had it (IDE stays IDE: a guest without virtio drivers still boots), else virtio. */
export function diskInterface(machine: GroupMachine | undefined, disk: string): 'virtio' | 'ide' {
  const disks = machine?.kind === 'qemu' && Array.isArray(machine.disks) ? (machine.disks as Array<{ name?: string; driver?: string | null }>) : [];
  const driver = disks.find((d) => d?.name === disk)?.driver ?? '';
  return /^ide-/.test(driver) ? 'ide' : 'virtio';
}
