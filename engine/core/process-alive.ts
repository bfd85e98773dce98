// Whether a process of this host still runs: lock staleness and leftover
// qemu-nbd socket directories both judge their owner by its pid.

/** True while `pid` exists (EPERM: it exists, owned by another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
