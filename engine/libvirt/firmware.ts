// Reads the firmware state a libvirt domain names (UEFI variables, swtpm
// state) into the VM restore point, within firmwareBytesMax: a VM with
// Secure Boot keys or a TPM-sealed disk key does not boot again without it.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockvaultError } from '../core/errors.js';
import { firmwareBytesMax, type FirmwareFile } from './domain.js';

async function filesUnder(path: string): Promise<string[]> {
  const st = await stat(path).catch(() => null);
  if (!st) return [];
  if (!st.isDirectory()) return [path];
  const names = (await readdir(path)).sort();
  return (await Promise.all(names.map((n) => filesUnder(join(path, n))))).flat();
}

export async function readFirmware(paths: Array<{ role: 'nvram' | 'tpm'; path: string }>, domain: string): Promise<{ files: FirmwareFile[]; missing: string[] }> {
  const files: FirmwareFile[] = [];
  const missing: string[] = [];
  let total = 0;
  for (const p of paths) {
    const found = await filesUnder(p.path);
    if (found.length === 0) { missing.push(`${p.role} ${p.path}`); continue; }
    for (const f of found) {
      const bytes = await readFile(f).catch((err: Error) => { throw new BlockvaultError('SOURCE_IO', `domain ${domain}: cannot read its ${p.role} state ${f}: ${err.message}`); });
      total += bytes.length;
      if (total > firmwareBytesMax) throw new BlockvaultError('BAD_INPUT', `domain ${domain}: its firmware state (${p.role} ${f} and before it) is over ${firmwareBytesMax} bytes, more than a VM restore point keeps`);
      files.push({ role: p.role, path: f, base64: bytes.toString('base64'), sha256: createHash('sha256').update(bytes).digest('hex') });
    }
  }
  return { files, missing };
}

/** A saved firmware file's bytes, checked against the SHA-256 it was saved with. */
export function checkedFirmwareBytes(f: { role: string; path: string; base64: string; sha256: string }, what: string): Buffer {
  const bytes = Buffer.from(String(f.base64), 'base64');
  if (createHash('sha256').update(bytes).digest('hex') !== f.sha256) throw new BlockvaultError('CHECKSUM_MISMATCH', `VM restore point ${what}: its saved ${f.role} state ${f.path} does not match its SHA-256`);
  return bytes;
}
