// A libvirt domain as a backup needs it: running or not, its XML (kept as
// the VM's configuration), its disks in order (writable file/block disks;
// CD-ROMs, floppies and read-only disks are skipped), and the firmware
// variable store it names.
import { BlockvaultError } from '../core/errors.js';
import type { Virsh } from './virsh.js';

export interface DomainDisk { name: string; bus: string; format: string; source: string }

/** Throws, naming the domain, unless it exists and runs (pull-mode backup needs a running QEMU). */
export async function checkRunning(virsh: Virsh, domain: string): Promise<void> {
  const state = (await virsh.run(['domstate', domain]).catch((err: BlockvaultError) => {
    if (/failed to get domain|Domain not found/i.test(err.message)) throw new BlockvaultError('BAD_INPUT', `--libvirt ${domain}: no such domain on ${virsh.uri}`);
    throw err;
  })).trim();
  if (state !== 'running' && state !== 'paused') throw new BlockvaultError('BAD_INPUT', `--libvirt ${domain}: the domain is ${state}, not running: back up a shut-off VM's image files with --disk NAME=FILE`);
}

const attr = (tag: string, name: string) => new RegExp(`\\b${name}=['"]([^'"]*)['"]`).exec(tag)?.[1];

/** The writable disks of a domain XML, in the XML's order, and what was skipped. */
export function domainDisks(xml: string): { disks: DomainDisk[]; skipped: string[] } {
  const disks: DomainDisk[] = [];
  const skipped: string[] = [];
  for (const m of xml.matchAll(/<disk\b([^>]*)>([\s\S]*?)<\/disk>/g)) {
    const [, head, body] = m;
    const target = /<target\b[^>]*>/.exec(body)?.[0] ?? '';
    const name = attr(target, 'dev');
    if (!name) continue;
    const device = attr(head, 'device') ?? 'disk';
    if (device !== 'disk') { skipped.push(`${name} (${device})`); continue; }
    if (/<readonly\s*\/>/.test(body) || /<shareable\s*\/>/.test(body)) { skipped.push(`${name} (read-only or shared)`); continue; }
    const sourceTag = /<source\b[^>]*>/.exec(body)?.[0] ?? '';
    const driver = /<driver\b[^>]*>/.exec(body)?.[0] ?? '';
    disks.push({ name, bus: attr(target, 'bus') ?? 'virtio', format: attr(driver, 'type') ?? 'raw', source: attr(sourceTag, 'file') ?? attr(sourceTag, 'dev') ?? attr(sourceTag, 'name') ?? '' });
  }
  return { disks, skipped };
}

/** The domain's persistent definition if it has one (what a restore defines again), else its live XML. */
export async function domainXml(virsh: Virsh, domain: string): Promise<string> {
  return virsh.run(['dumpxml', '--inactive', '--security-info', domain]).catch(() => virsh.run(['dumpxml', domain]));
}

export function unescapeXml(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

/** Memory, CPUs and machine type out of the XML, for boot. */
export function domainShape(xml: string): { memoryBytes: number | null; cpus: number | null; machineType: string | null } {
  const mem = /<memory\b([^>]*)>(\d+)<\/memory>/.exec(xml);
  const unit = (mem && attr(mem[1], 'unit')) ?? 'KiB';
  const scale: Record<string, number> = { b: 1, bytes: 1, KiB: 1024, k: 1024, MiB: 1024 ** 2, M: 1024 ** 2, GiB: 1024 ** 3, G: 1024 ** 3 };
  const vcpu = /<vcpu\b[^>]*>(\d+)<\/vcpu>/.exec(xml);
  const type = /<type\b([^>]*)>hvm<\/type>/.exec(xml);
  return { memoryBytes: mem ? Number(mem[2]) * (scale[unit] ?? 1024) : null, cpus: vcpu ? Number(vcpu[1]) : null, machineType: type ? attr(type[1], 'machine') ?? null : null };
}

/** The UEFI variable store file the domain names (<nvram>), if any. */
export function nvramPath(xml: string): string | null {
  const m = /<nvram\b[^>]*>([^<]+)<\/nvram>/.exec(xml);
  return m ? unescapeXml(m[1].trim()) : null;
}

/** The domain's pflash firmware (UEFI: OVMF), as its live XML names it: code image, secure boot, the variables' template. */
export interface PflashLoader { code: string; secure: boolean; template: string | null }

export function pflashLoader(xml: string): PflashLoader | null {
  const m = /<loader\b([^>]*)>([^<]+)<\/loader>/.exec(xml);
  if (!m || !/\btype=['"]pflash['"]/.test(m[1])) return null;
  const template = /<nvram\b[^>]*\btemplate=['"]([^'"]+)['"]/.exec(xml)?.[1];
  return { code: unescapeXml(m[2].trim()), secure: /\bsecure=['"]yes['"]/.test(m[1]), template: template ? unescapeXml(template) : null };
}

export function checkSelected(all: DomainDisk[], skipped: string[], wanted: string[] | undefined, domain: string): DomainDisk[] {
  if (!wanted) {
    if (all.length === 0) throw new BlockvaultError('BAD_INPUT', `domain ${domain} has no writable disk to back up${skipped.length ? ` (skipped: ${skipped.join(', ')})` : ''}`);
    return all;
  }
  for (const w of wanted) {
    if (!all.some((d) => d.name === w)) throw new BlockvaultError('BAD_INPUT', `--disks ${w}: domain ${domain} has no writable disk of that name; its writable disks are ${all.map((d) => d.name).join(', ') || 'none'}`);
  }
  return all.filter((d) => wanted.includes(d.name));
}

/** Firmware state kept with the domain XML: the UEFI variable store and the swtpm state directory, as libvirt keeps them. */
export interface FirmwareFile { role: 'nvram' | 'tpm'; path: string; base64: string; sha256: string }
/** The most firmware state a group object carries (its JSON is at most 1 MiB; base64 grows bytes by 4/3). */
export const firmwareBytesMax = 640 * 1024;

/** Where the domain's firmware state lives: its <nvram> file, and for an emulated TPM swtpm's directory of this domain's uuid. */
export function firmwarePaths(xml: string, swtpmDir = '/var/lib/libvirt/swtpm'): Array<{ role: 'nvram' | 'tpm'; path: string }> {
  const out: Array<{ role: 'nvram' | 'tpm'; path: string }> = [];
  const nvram = nvramPath(xml);
  if (nvram) out.push({ role: 'nvram', path: nvram });
  const uuid = /<uuid>([0-9a-f-]{36})<\/uuid>/.exec(xml)?.[1];
  if (uuid && /<tpm\b[\s\S]*?<backend\b[^>]*type=['"]emulator['"]/.test(xml)) out.push({ role: 'tpm', path: `${swtpmDir}/${uuid}` });
  return out;
}
