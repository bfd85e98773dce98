// The firmware a booted VM restore point starts with. A libvirt domain that
// booted with UEFI (a pflash loader: OVMF) boots again with the same code
// image and its own saved variable store (its boot entries, Secure Boot
// keys), written beside the overlays so the VM may change it as it runs and
// the repository stays untouched; SeaBIOS would not find its bootloader.
import { existsSync, readFileSync } from 'node:fs';
import { BlockvaultError } from '../../core/errors.js';
import type { GroupMachine } from '../../format/group-format.js';
import { pflashLoader } from '../../libvirt/domain.js';
import { checkedFirmwareBytes } from '../../libvirt/firmware.js';

export interface BootFirmware { args: string[]; vars: Buffer; secure: boolean; notes: string[] }

/** QEMU's -drive values escape a comma by doubling it. */
const drivePath = (p: string) => p.replace(/,/g, ',,');

interface Saved { role: string; path: string; base64: string; sha256: string }

/** The pflash drives and the variable store to write to `varsFile` first, or null: the default BIOS. */
export function bootFirmware(machine: GroupMachine | undefined, what: string, varsFile: string): BootFirmware | null {
  if (machine?.kind !== 'libvirt' || typeof machine.domainXml !== 'string') return null;
  const loader = pflashLoader(machine.domainXml);
  if (!loader) return null;
  if (!existsSync(loader.code)) {
    throw new BlockvaultError('BAD_INPUT', `VM restore point ${what} boots with the UEFI firmware ${loader.code}, which this host does not have: install it (Debian: apt-get install ovmf), or restore --to and define the domain where it is`);
  }
  const saved = (Array.isArray(machine.firmware) ? machine.firmware as Saved[] : []).filter((f) => f?.role === 'nvram');
  const notes: string[] = [];
  let vars: Buffer;
  if (saved.length > 0) vars = checkedFirmwareBytes(saved[0], what);
  else if (loader.template && existsSync(loader.template)) {
    vars = readFileSync(loader.template);
    notes.push(`${what} kept no UEFI variables: starting from the template ${loader.template} (the VM's own boot entries and keys are not in it)`);
  } else {
    throw new BlockvaultError('BAD_INPUT', `VM restore point ${what} boots with UEFI but kept no variable store, and no template for one is on this host${loader.template ? ` (${loader.template})` : ''}`);
  }
  if (Array.isArray(machine.firmware) && (machine.firmware as Saved[]).some((f) => f?.role === 'tpm')) {
    notes.push(`${what} kept TPM state; boot does not attach a TPM (restore --to writes it, for the domain to use)`);
  }
  const args = ['-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${drivePath(loader.code)}`, '-drive', `if=pflash,format=raw,unit=1,file=${drivePath(varsFile)}`];
  // Secure Boot's variables are writable only from SMM: QEMU needs it on, and the pflash in secure mode.
  if (loader.secure) args.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
  return { args, vars, secure: loader.secure, notes };
}

/** The saved shape's -machine with SMM on (Secure Boot); q35 when the shape named no machine type. */
export function withSmm(shape: string[]): string[] {
  const k = shape.indexOf('-machine');
  if (k < 0) return ['-machine', 'q35,smm=on', ...shape];
  return [...shape.slice(0, k + 1), `${shape[k + 1]},smm=on`, ...shape.slice(k + 2)];
}
