// The one seam between the engine and the filesystem holding a repository.
// Packs, restore points and config go through it, so tests can inject
// faults (ENOSPC, EIO, power loss dropping unsynced writes) at any call.
// Paths are relative to the repository root, with '/' separators.

export interface AppendHandle {
  /** Bytes appended so far. */
  readonly bytes: number;
  /** Appends the parts in order, with one writev where possible. */
  append(data: Uint8Array | readonly Uint8Array[]): Promise<void>;
  /** fsync: everything appended so far survives power loss. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface ReadHandle {
  readonly sizeBytes: number;
  /** Reads exactly `length` bytes at `offset` (into `into` when given), or fails. */
  readAt(offset: number, length: number, into?: Uint8Array): Promise<Buffer>;
  /** Tells the OS a range will not be read again soon: its pages may leave the page cache. A hint; never fails. */
  dropCache(offset: number, length: number): void;
  close(): Promise<void>;
}

export interface Storage {
  readonly root: string;
  exists(path: string): Promise<boolean>;
  mkdirs(path: string): Promise<void>;
  /** Creates a new file (fails if it exists) for appending. */
  create(path: string): Promise<AppendHandle>;
  open(path: string): Promise<ReadHandle>;
  readAll(path: string, bytesMax: number): Promise<Buffer>;
  rename(from: string, to: string): Promise<void>;
  /** fsync a directory: renames and creations in it survive power loss. */
  syncDir(path: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** Entry names in a directory; [] when it does not exist. */
  list(path: string): Promise<string[]>;
  sizeOf(path: string): Promise<number>;
}

export function dirOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at < 0 ? '.' : path.slice(0, at);
}

/** Writes a whole small file durably: temp file, fsync, rename, fsync dir. */
export async function writeDurably(storage: Storage, tmpPath: string, path: string, data: Uint8Array): Promise<void> {
  const handle = await storage.create(tmpPath);
  try {
    await handle.append(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await storage.rename(tmpPath, path);
  await storage.syncDir(dirOf(path));
}
