// `boot <vm>@<id>` of a VM restore point whose libvirt domain booted with
// UEFI: the same OVMF code image, the point's own saved variable store
// (written beside the overlays), a real guest booting through OVMF's shell
// (the boot fixture's startup.nsh) to its marker, under TCG. The point is
// made through the engine with a domain XML as libvirt's live XML names a
// UEFI loader (a libvirt round trip is covered by libvirt-backup.test.ts).
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runGroupBackup } from '../../engine/backup/group-backup.js';
import { readFirmware } from '../../engine/libvirt/firmware.js';
import { Repository } from '../../engine/repo/repository.js';
import { openSource } from '../../engine/source/source.js';
import { cli, cliPath } from '../helpers/cli.js';
import { newRepo, sharedPool } from '../helpers/repo.js';
import { tempDir } from '../helpers/temp.js';

const ovmfCode = '/usr/share/OVMF/OVMF_CODE.fd';
const ovmfVars = '/usr/share/OVMF/OVMF_VARS.fd';
const MiB = 1024 * 1024;

function bootCli(args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

describe('boot: a VM restore point of a UEFI domain', () => {
  const dir = tempDir('bv-uefi-');
  let root = '';

  beforeAll(async () => {
    if (!existsSync(ovmfCode)) throw new Error(`${ovmfCode} is missing: install Debian's ovmf package (scripts/setup.sh --tests)`);
    execFileSync('bash', [new URL('../../scripts/boot-fixture.sh', import.meta.url).pathname, join(dir, 'fixture.raw'), 'marker: booted through UEFI'], { stdio: 'pipe' });
    root = await newRepo();
  }, 120_000);

  /** A VM restore point of the fixture disk, its machine a libvirt domain with this loader and saved variables. */
  async function uefiPoint(vm: string, code: string): Promise<string> {
    const nvram = join(dir, `${vm}_VARS.fd`);
    copyFileSync(ovmfVars, nvram);
    const xml = `<domain type='qemu'><name>${vm}</name><memory unit='KiB'>262144</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type>`
      + `<loader readonly='yes' type='pflash'>${code}</loader><nvram template='${ovmfVars}'>${nvram}</nvram></os></domain>`;
    const firmware = await readFirmware([{ role: 'nvram', path: nvram }], vm);
    const repo = await Repository.open(root, { writer: { what: 'test', lockWaitSeconds: 5 } });
    try {
      const source = await openSource(join(dir, 'fixture.raw'));
      const made = await runGroupBackup(repo, vm, [{ vm, disk: 'vda', source, pool: sharedPool() }], {
        machine: { kind: 'libvirt', domainXml: xml, memoryBytes: 256 * MiB, cpus: 1, machineType: 'pc', disks: [{ name: 'vda', bus: 'virtio', format: 'raw' }], firmware: firmware.files },
        consistency: 'crash',
      });
      await source.close();
      return made.group;
    } finally {
      await repo.close();
    }
  }

  it('boots it with the same OVMF and the saved variable store, copied beside the overlays', async () => {
    const group = await uefiPoint('uefi01', ovmfCode);
    const overlays = join(dir, 'overlays');
    mkdirSync(overlays);
    // -net none: OVMF would first try to boot from the network, a long wait under TCG.
    const r = await bootCli(['boot', '-r', root, 'uefi01@latest', '--accel', 'tcg', '--overlay-dir', overlays, '--', '-no-reboot', '-net', 'none'], dir);
    expect(r.out).toMatch(/booting uefi01@[0-9a-f]{8} \(1 disk\) from the backup \(accel tcg, -machine pc -m 256M -smp 1, UEFI\); the VM writes to uefi01-vda-[0-9a-f]{8}\.qcow2, uefi01-[0-9a-f]{8}-VARS\.fd/);
    expect(r.out).toMatch(/Shell> /); // OVMF's own shell ran startup.nsh: this was UEFI, not SeaBIOS
    expect(r.out).toMatch(/marker: booted through UEFI/);
    expect(r.out).toMatch(/BLOCKVAULT-BOOT-DONE/);
    expect(r.code, r.out).toBe(0);
    const vars = `uefi01-${group.slice(0, 8)}-VARS.fd`;
    expect(readdirSync(overlays).sort()).toEqual([vars, expect.stringMatching(/^uefi01-vda-[0-9a-f]{8}\.qcow2$/)]); // hex ids sort before "vda"
    expect(statSync(join(overlays, vars)).size).toBe(statSync(ovmfVars).size);
    // Booted again into the same place: refused by name, as for an overlay.
    const again = await cli(['boot', '-r', root, 'uefi01@latest', '--accel', 'tcg', '--overlay-dir', overlays]);
    expect(again.code, again.stderr).toBe(1);
    expect(again.stderr).toMatch(/overlay .*uefi01-.*exists; delete it/);
  }, 300_000);

  it('refuses, by name and before writing anything, a point whose firmware this host does not have', async () => {
    await uefiPoint('uefi02', '/usr/share/OVMF/NO_SUCH_CODE.fd');
    const overlays = join(dir, 'overlays2');
    mkdirSync(overlays);
    const r = await cli(['boot', '-r', root, 'uefi02@latest', '--accel', 'tcg', '--overlay-dir', overlays]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/VM restore point uefi02@[0-9a-f]+ boots with the UEFI firmware \/usr\/share\/OVMF\/NO_SUCH_CODE\.fd, which this host does not have: install it \(Debian: apt-get install ovmf\)/);
    expect(readdirSync(overlays)).toEqual([]);
  }, 60_000);
});
