import { describe, expect, it } from 'vitest';
import { checkSelected, domainDisks, domainShape, nvramPath, pflashLoader } from '../../../engine/libvirt/domain.js';
import { withSmm } from '../../../engine/cli/commands/boot-firmware.js';
import { diskInterface, vmQemuArgs } from '../../../engine/cli/commands/boot-shape.js';

// Shaped as libvirt 9 prints it (virsh dumpxml --inactive).
const xml = `<domain type='kvm'>
  <name>web01</name>
  <memory unit='KiB'>2097152</memory>
  <vcpu placement='static'>4</vcpu>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader><nvram>/var/lib/libvirt/qemu/nvram/web01_VARS.fd</nvram></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/libvirt/images/web01.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type="block" device="disk">
      <driver name="qemu" type="raw"/>
      <source dev="/dev/vg0/web01-data"/>
      <target dev="sdb" bus="sata"/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/shared.img'/>
      <target dev='vdc' bus='virtio'/>
      <shareable/>
    </disk>
  </devices>
</domain>`;

describe('libvirt domain XML', () => {
  it('lists the writable disks in order and names what it skips', () => {
    expect(domainDisks(xml)).toEqual({
      disks: [
        { name: 'vda', bus: 'virtio', format: 'qcow2', source: '/var/lib/libvirt/images/web01.qcow2' },
        { name: 'sdb', bus: 'sata', format: 'raw', source: '/dev/vg0/web01-data' },
      ],
      skipped: ['sda (cdrom)', 'vdc (read-only or shared)'],
    });
  });
  it('reads the shape boot needs, and the variable store', () => {
    expect(domainShape(xml)).toEqual({ memoryBytes: 2 * 1024 ** 3, cpus: 4, machineType: 'pc-q35-7.2' });
    expect(nvramPath(xml)).toBe('/var/lib/libvirt/qemu/nvram/web01_VARS.fd');
    expect(vmQemuArgs({ kind: 'libvirt', ...domainShape(xml) }, undefined)).toEqual(['-machine', 'pc-q35-7.2', '-m', '2048M', '-smp', '4']);
    expect(vmQemuArgs({ kind: 'libvirt', ...domainShape(xml) }, '512M')).toContain('512M');
    expect(vmQemuArgs(undefined, undefined)).toEqual(['-m', '1G', '-smp', '2']);
    expect(diskInterface({ kind: 'libvirt', disks: [{ name: 'hda', bus: 'ide' }] }, 'hda')).toBe('ide');
    expect(diskInterface({ kind: 'qemu', disks: [{ name: 'vda', driver: 'virtio-blk-pci' }] }, 'vda')).toBe('virtio');
  });
  it('reads the UEFI loader boot starts again, Secure Boot included', () => {
    expect(pflashLoader(xml)).toEqual({ code: '/usr/share/OVMF/OVMF_CODE.fd', secure: false, template: null });
    const secure = `<domain><os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><loader readonly="yes" secure="yes" type="pflash">/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader><nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>/var/lib/libvirt/qemu/nvram/a&amp;b_VARS.fd</nvram></os></domain>`;
    expect(pflashLoader(secure)).toEqual({ code: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', secure: true, template: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' });
    expect(nvramPath(secure)).toBe('/var/lib/libvirt/qemu/nvram/a&b_VARS.fd');
    expect(pflashLoader("<domain><os><loader type='rom'>/usr/share/seabios/bios.bin</loader></os></domain>")).toBeNull();
    expect(pflashLoader('<domain><os><type>hvm</type></os></domain>')).toBeNull();
    expect(withSmm(['-machine', 'pc-q35-7.2', '-m', '2048M'])).toEqual(['-machine', 'pc-q35-7.2,smm=on', '-m', '2048M']);
    expect(withSmm(['-m', '1G'])).toEqual(['-machine', 'q35,smm=on', '-m', '1G']);
  });
  it('refuses a disk name the domain does not have, naming the ones it has', () => {
    const { disks, skipped } = domainDisks(xml);
    expect(checkSelected(disks, skipped, ['sdb'], 'web01').map((d) => d.name)).toEqual(['sdb']);
    expect(() => checkSelected(disks, skipped, ['vdz'], 'web01')).toThrow(/--disks vdz: domain web01 has no writable disk of that name; its writable disks are vda, sdb/);
    expect(() => checkSelected([], skipped, undefined, 'web01')).toThrow(/no writable disk to back up \(skipped: sda \(cdrom\)/);
  });
});
