// The filesystem inside a partition, whichever blockvault can read.
import type { PointReader } from '../engine/read/point-reader.js';
import { ExtFiles } from './ext-files.js';
import { FatFiles } from './fat-files.js';
import type { Partition } from './partitions.js';

export type PartitionFiles = ExtFiles | FatFiles;

/** ext2/3/4 or FAT12/16/32; null when the partition holds neither. */
export async function openPartitionFiles(reader: PointReader, partition: Partition): Promise<PartitionFiles | null> {
  return (await ExtFiles.open(reader, partition)) ?? (await FatFiles.open(reader, partition));
}
