// The one seam between the engine and where a repository lives, shaped like
// an object store (kopia's blob.Storage; S3 has every operation): whole
// objects put atomically, byte ranges read, prefixes listed, objects
// deleted, and a create that fails when the object exists (for locks).
// Nothing else touches the filesystem for repository objects, so tests can
// inject faults at every call (fault-storage.ts).
//
// Keys are '/'-separated paths relative to the repository ("packs/ab/x.pack").
// Writes are staged under a staging area named by the writer's session id,
// so what a dead session left behind can be found and removed without
// touching a live one's (docs/FORMAT.md "Sessions").

export interface ObjectInfo { key: string; sizeBytes: number; modifiedMs: number }

/** A large object streamed in pieces; it appears at its key, whole and durable, only at commit(). */
export interface ObjectWriter {
  /** Bytes written so far. */
  readonly bytes: number;
  /** Appends the parts in order. */
  write(data: Uint8Array | readonly Uint8Array[]): Promise<void>;
  /** Makes the object visible and durable: once this returns, a crash or power cut keeps it. */
  commit(): Promise<void>;
  /** Drops everything written; the key never appears. */
  abort(): Promise<void>;
}

export interface RangeReader {
  readonly sizeBytes: number;
  /** Reads exactly `length` bytes at `offset` (into `into` when given), or fails. */
  readAt(offset: number, length: number, into?: Uint8Array): Promise<Buffer>;
  /** Tells the OS a range will not be read again soon: its pages may leave the page cache. A hint; never fails. */
  dropCache(offset: number, length: number): void;
  close(): Promise<void>;
}

export interface StagingArea { id: string; sizeBytes: number; modifiedMs: number }

export interface ObjectStore {
  /** Where the repository is, for messages. */
  readonly description: string;
  /** Makes a new repository's place: 'ready' when it is new or empty; else says what is there (and changes nothing). */
  prepareEmpty(): Promise<'ready' | 'holds-config' | 'not-empty'>;
  /** Puts a whole object atomically and durably, replacing any object at the key. */
  put(key: string, data: Uint8Array, stagingId: string): Promise<void>;
  /** Like put, but fails with EEXIST if the key exists (and then changes nothing). */
  putIfAbsent(key: string, data: Uint8Array, stagingId: string): Promise<void>;
  /** Starts a streamed object (a pack: never whole in memory). */
  writer(key: string, stagingId: string): Promise<ObjectWriter>;
  /** A whole object, at most bytesMax bytes (ENOENT if absent). */
  get(key: string, bytesMax: number): Promise<Buffer>;
  /** Opens an object for range reads (ENOENT if absent). */
  openRange(key: string): Promise<RangeReader>;
  /** Every object whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** The same keys without sizes or times: what opening a repository needs, and cheaper on a filesystem (no stat per object). */
  listKeys(prefix: string): Promise<string[]>;
  /** Removes an object; absent is fine. */
  delete(key: string): Promise<void>;
  /** Staging areas holding anything (a live session's, or what a dead one left). */
  listStaging(): Promise<StagingArea[]>;
  /** Removes a staging area and everything in it. */
  removeStaging(stagingId: string): Promise<void>;
  /** A local directory beside the repository for a cache (LMDB), or null when the store is not a local filesystem. */
  localDir(name: string): string | null;
}

export function dirOf(key: string): string {
  const at = key.lastIndexOf('/');
  return at < 0 ? '' : key.slice(0, at);
}
