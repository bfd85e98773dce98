// A VM restore point with a libvirt configuration and firmware state, made
// through the engine and restored into a directory: the disks, the domain
// XML, and the UEFI variables / TPM state under <vm>.firmware, each checked
// against its SHA-256; a damaged one refuses the restore and leaves nothing.
import { mkdirSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runGroupBackup } from '../../../engine/backup/group-backup.js';
import { firmwarePaths } from '../../../engine/libvirt/domain.js';
import { readFirmware } from '../../../engine/libvirt/firmware.js';
import { Repository } from '../../../engine/repo/repository.js';
import { runGroupRestore } from '../../../engine/restore/group-restore.js';
import { openSource } from '../../../engine/source/source.js';
import { randomStream } from '../../../scripts/vm-disk.js';
import { newRepo, sharedPool } from '../../helpers/repo.js';
import { tempDir } from '../../helpers/temp.js';

describe('VM restore point with firmware state', () => {
  const dir = tempDir();

  it('keeps the UEFI variables and the TPM state a domain names, and restores them checked', async () => {
    const uuid = '87c715b4-1b46-46f8-a800-a2f5f25ace03';
    const nvram = join(dir, 'web01_VARS.fd');
    writeFileSync(nvram, randomStream('vars')(128 * 1024));
    mkdirSync(join(dir, 'swtpm', uuid, 'tpm2'), { recursive: true });
    writeFileSync(join(dir, 'swtpm', uuid, 'tpm2', 'tpm2-00.permall'), randomStream('tpm')(9000));
    const xml = `<domain><name>web01</name><uuid>${uuid}</uuid><os><nvram>${nvram}</nvram></os><devices><tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm></devices></domain>`;
    const paths = firmwarePaths(xml, join(dir, 'swtpm'));
    expect(paths.map((p) => p.role)).toEqual(['nvram', 'tpm']);
    const firmware = await readFirmware([...paths, { role: 'nvram', path: join(dir, 'gone.fd') }], 'web01');
    expect(firmware.files.map((f) => f.path)).toEqual([nvram, join(dir, 'swtpm', uuid, 'tpm2', 'tpm2-00.permall')]);
    expect(firmware.missing).toEqual([`nvram ${join(dir, 'gone.fd')}`]);

    const root = await newRepo();
    const image = join(dir, 'vda.raw');
    writeFileSync(image, randomStream('disk')(2 * 1024 * 1024));
    const repo = await Repository.open(root, { writer: { what: 'test', lockWaitSeconds: 5 } });
    try {
      const source = await openSource(image);
      const made = await runGroupBackup(repo, 'web01', [{ vm: 'web01', disk: 'vda', source, pool: sharedPool() }], { machine: { kind: 'libvirt', domainXml: xml, firmware: firmware.files }, consistency: 'crash' });
      await source.close();
      const group = repo.index.allGroups().find((g) => g.id === made.group)!;
      const out = join(dir, 'out');
      const restored = await runGroupRestore(repo, group, out, sharedPool(), { force: false, durable: false });
      expect(readFileSync(join(out, 'vda.raw')).equals(readFileSync(image))).toBe(true);
      expect(readFileSync(join(out, 'web01.xml'), 'utf8')).toBe(xml);
      expect(readFileSync(join(out, 'web01.firmware', 'nvram', nvram)).equals(readFileSync(nvram))).toBe(true);
      expect(existsSync(join(out, 'web01.firmware', 'tpm', dir, 'swtpm', uuid, 'tpm2', 'tpm2-00.permall'))).toBe(true);
      expect(restored.config).toEqual([join(out, 'web01.vm.json'), join(out, 'web01.xml'), join(out, 'web01.firmware')]);
      // The same point again into the same place: refused, nothing touched.
      await expect(runGroupRestore(repo, group, out, sharedPool(), { force: false, durable: false })).rejects.toThrow(/target .*vda\.raw exists; use --force/);
      // A saved file whose bytes no longer match: refused by name, and the directory is left without any of it.
      const bad = { ...firmware.files[0], sha256: '0'.repeat(64) };
      const source2 = await openSource(image);
      const made2 = await runGroupBackup(repo, 'web01', [{ vm: 'web01', disk: 'vda', source: source2, pool: sharedPool() }], { machine: { kind: 'libvirt', domainXml: xml, firmware: [bad] }, consistency: 'crash' });
      await source2.close();
      const out2 = join(dir, 'out2');
      await expect(runGroupRestore(repo, repo.index.allGroups().find((g) => g.id === made2.group)!, out2, sharedPool(), { force: false, durable: false }))
        .rejects.toThrow(/its saved nvram state .*web01_VARS\.fd does not match its SHA-256; the 1 disk\(s\) already restored were removed again/);
      expect(readdirSync(out2)).toEqual([]);
    } finally {
      await repo.close();
    }
  });
});
