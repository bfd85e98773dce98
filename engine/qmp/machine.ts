// The machine description a plain QEMU gives over QMP, kept in the VM
// restore point so `restore` can write it and `boot` can start the backup in
// the same shape: machine type, CPU count, memory, and the disks in order
// with the device model each is attached to.
import type { QmpClient } from './client.js';
import type { VmDisk } from './vm-disks.js';

export interface QemuMachine {
  kind: 'qemu';
  qemuVersion: string;
  /** e.g. pc-i440fx-7.2 (the versioned name: a newer QEMU keeps the same guest hardware). */
  machineType: string | null;
  accel: 'kvm' | 'tcg';
  cpus: number;
  memoryBytes: number;
  name: string | null;
  disks: Array<{ name: string; driver: string | null; sizeBytes: number; format: string; file: string }>;
}

interface QomProp { name: string; type: string }

function childType(props: QomProp[], name: string): string | null {
  const p = props.find((x) => x.name === name);
  const m = p ? /^child<(.+)>$/.exec(p.type) : null;
  return m ? m[1] : null;
}

export async function describeMachine(qmp: QmpClient, disks: VmDisk[]): Promise<QemuMachine> {
  const [root, cpus, memory, kvm, name, peripherals] = await Promise.all([
    qmp.execute<QomProp[]>('qom-list', { path: '/' }),
    qmp.execute<unknown[]>('query-cpus-fast'),
    qmp.execute<{ 'base-memory': number }>('query-memory-size-summary'),
    qmp.execute<{ enabled: boolean }>('query-kvm'),
    qmp.execute<{ name?: string }>('query-name'),
    qmp.execute<QomProp[]>('qom-list', { path: '/machine/peripheral' }).catch(() => [] as QomProp[]),
  ]);
  const machine = childType(root, 'machine');
  const v = qmp.version;
  return {
    kind: 'qemu',
    qemuVersion: `${v.major}.${v.minor}.${v.micro}`,
    machineType: machine ? machine.replace(/-machine$/, '') : null,
    accel: kvm.enabled ? 'kvm' : 'tcg',
    cpus: cpus.length,
    memoryBytes: memory['base-memory'],
    name: name.name ?? null,
    disks: disks.map((d) => ({ name: d.name, driver: childType(peripherals, d.name), sizeBytes: d.sizeBytes, format: d.format, file: d.file })),
  };
}
