// Where each kind of file lives inside a repository (docs/FORMAT.md "Layout").

export const configPath = 'config';
export const packsDir = 'packs';
export const pointsDir = 'points';
/** The LMDB cache, for a repository on a local filesystem (index-location.ts). */
export const indexDir = 'index';
export const locksDir = 'locks';

export function packDir(packIdHex: string): string {
  return `${packsDir}/${packIdHex.slice(0, 2)}`;
}
export function packPath(packIdHex: string): string {
  return `${packDir(packIdHex)}/${packIdHex}.pack`;
}
/** The pack id a key names (`packs/<ab>/<id>.pack`), or null for anything else. */
export function packIdFromKey(key: string): string | null {
  return /^packs\/[0-9a-f]{2}\/([0-9a-f]{32})\.pack$/.exec(key)?.[1] ?? null;
}

export function pointDir(vm: string, disk: string): string {
  return `${pointsDir}/${vm}/${disk}`;
}
export function pointPath(vm: string, disk: string, id: string): string {
  return `${pointDir(vm, disk)}/${id}.point`;
}
export const groupsDir = 'groups';
export function groupPath(vm: string, id: string): string {
  return `${groupsDir}/${vm}/${id}.group`;
}
/** Protection markers: a restore point or VM restore point (group) that forget never removes. */
export const protectDir = 'protect';
export function protectPath(vm: string, id: string): string {
  return `${protectDir}/${vm}/${id}.json`;
}
