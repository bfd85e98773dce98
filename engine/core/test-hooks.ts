// Fault-test hooks that need a real process death at an exact point:
// BLOCKVAULT_TEST_KILL_AT=<event>:<n> makes the process SIGKILL itself at the
// n-th occurrence of <event>. Off (one env lookup) unless set.
const counts = new Map<string, number>();

export function killPoint(event: string): void {
  const spec = process.env.BLOCKVAULT_TEST_KILL_AT;
  if (!spec || !spec.startsWith(`${event}:`)) return;
  const seen = (counts.get(event) ?? 0) + 1;
  counts.set(event, seen);
  if (seen === Number(spec.slice(event.length + 1))) process.kill(process.pid, 'SIGKILL');
}

/** The time a backup records: BLOCKVAULT_TEST_TIME (ISO 8601) when set, so tests can lay points out across days. */
export function backupTime(): Date {
  const fixed = process.env.BLOCKVAULT_TEST_TIME;
  return fixed ? new Date(fixed) : new Date();
}
