// Size of a block device, from sysfs (Node's fs.stat reports 0 for devices).
import { promises as fs, type Stats } from 'node:fs';

export async function blockDeviceBytes(stat: Stats): Promise<number> {
  const rdev = stat.rdev;
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00);
  const sectors = await fs.readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8');
  return Number(sectors.trim()) * 512;
}
