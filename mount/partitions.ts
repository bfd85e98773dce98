// MBR and GPT partition tables, parsed from the first sectors of a disk.
// Pure: bytes in, partitions out. A disk with neither has no partitions.
// (Hand-written: the npm parsers want a file or a block device; this needs
// only the bytes a restore point already serves, and is small.)

export interface Partition {
  number: number; // 1-based, as Linux numbers them (MBR: primary 1-4)
  startBytes: number;
  sizeBytes: number;
  type: string; // MBR: two hex digits; GPT: type GUID
  name: string;
}

const sector = 512;
/** GPT limits: entries we read, bytes per entry. */
const gptEntriesMax = 256;

function guid(b: Buffer, at: number): string {
  const hex = (from: number, to: number, le: boolean) => {
    const part = Buffer.from(b.subarray(at + from, at + to));
    return (le ? part.reverse() : part).toString('hex');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`.toUpperCase();
}

/** Bytes needed to parse a GPT with up to gptEntriesMax entries: LBA 0 to 33. */
export const partitionTableBytes = 34 * sector;

export function parsePartitions(head: Buffer, diskBytes: number): Partition[] {
  if (head.length < 2 * sector || head[510] !== 0x55 || head[511] !== 0xaa) return [];
  const protective = [0, 1, 2, 3].some((i) => head[446 + i * 16 + 4] === 0xee);
  if (protective && head.subarray(sector, sector + 8).toString('latin1') === 'EFI PART') return parseGpt(head, diskBytes);
  const parts: Partition[] = [];
  for (let i = 0; i < 4; i++) {
    const e = 446 + i * 16;
    const type = head[e + 4];
    const startBytes = head.readUInt32LE(e + 8) * sector;
    const sizeBytes = head.readUInt32LE(e + 12) * sector;
    if (type === 0 || sizeBytes === 0 || startBytes + sizeBytes > diskBytes) continue;
    parts.push({ number: i + 1, startBytes, sizeBytes, type: type.toString(16).padStart(2, '0'), name: '' });
  }
  return parts;
}

function parseGpt(head: Buffer, diskBytes: number): Partition[] {
  const h = head.subarray(sector, 2 * sector);
  const entriesLba = Number(h.readBigUInt64LE(72));
  const count = Math.min(h.readUInt32LE(80), gptEntriesMax);
  const entryBytes = h.readUInt32LE(84);
  if (entryBytes < 128 || entryBytes > 4096) return [];
  const parts: Partition[] = [];
  for (let i = 0; i < count; i++) {
    const at = entriesLba * sector + i * entryBytes;
    if (at + 128 > head.length) break;
    const e = head.subarray(at, at + 128);
    if (e.subarray(0, 16).every((x) => x === 0)) continue;
    const first = Number(e.readBigUInt64LE(32));
    const last = Number(e.readBigUInt64LE(40));
    const startBytes = first * sector;
    const sizeBytes = (last - first + 1) * sector;
    if (last < first || startBytes + sizeBytes > diskBytes) continue;
    const name = e.subarray(56, 128).toString('utf16le').replace(/\0.*$/s, '');
    parts.push({ number: i + 1, startBytes, sizeBytes, type: guid(e, 0), name });
  }
  return parts;
}
