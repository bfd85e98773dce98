// Two kinds of failure (see README "How we write code"):
//  - assert(): a bug in blockvault. Crash loudly, never catch.
//  - BlockvaultError: an operating error with a stable code, mapped to a
//    CLI exit code here and to a FUSE errno by the mount.

export const errorCodes = {
  USAGE: 1,
  BAD_INPUT: 1,
  NOT_A_REPO: 1,
  REPO_EXISTS: 1,
  FORMAT_VERSION: 1,
  POINT_NOT_FOUND: 1,
  POINT_AMBIGUOUS: 1,
  CHECKSUM_MISMATCH: 2,
  CHUNK_MISSING: 2,
  CORRUPT: 2,
  REPO_LOCKED: 3,
  REPO_UNAVAILABLE: 3,
  SOURCE_IO: 4,
  SOURCE_CHANGED: 4,
  TARGET_IO: 4,
  NO_SPACE: 4,
  CBT_MISMATCH: 5,
  /** The hypervisor (QEMU over QMP, libvirt) refused, is too old, or went away. */
  HYPERVISOR: 6,
  /** Another blockvault is backing up the same VM. */
  VM_BUSY: 3,
  /** Stopped by SIGINT/SIGTERM/SIGHUP after cleaning up (128 + SIGINT, as shells report it). */
  INTERRUPTED: 130,
} as const;

export type ErrorCode = keyof typeof errorCodes;

export class BlockvaultError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BlockvaultError';
    this.code = code;
    this.exitCode = errorCodes[code];
  }
}

export class AssertionError extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionError';
  }
}

export function assert(condition: unknown, message = 'invariant violated'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Maps a Node.js system error on repository storage to a BlockvaultError. */
export function storageError(err: unknown, what: string): BlockvaultError {
  const sys = err as NodeJS.ErrnoException;
  // Only system errors (with an errno code) are operating errors; anything
  // else is a bug (or a test's simulated crash) and must propagate as is.
  if (err instanceof BlockvaultError || typeof sys?.code !== 'string') throw err;
  if (sys?.code === 'ENOSPC' || sys?.code === 'EDQUOT') {
    return new BlockvaultError('NO_SPACE', `no space left on device while writing ${what}`, { cause: err });
  }
  if (sys?.code === 'EACCES' || sys?.code === 'EPERM' || sys?.code === 'EROFS') {
    return new BlockvaultError('REPO_UNAVAILABLE', `permission denied: ${what} (${sys.code})`, { cause: err });
  }
  return new BlockvaultError('TARGET_IO', `I/O error on ${what}: ${sys?.message ?? String(err)}`, { cause: err });
}
