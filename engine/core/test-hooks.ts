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

/**
 * Test hook: BLOCKVAULT_TEST_PAUSE_AT=<event>:<path> makes the process write
 * <path>.reached at <event> and wait (at most 120 s) until <path>.go exists,
 * so a test can act at an exact point of a run (write to a frozen VM, kill
 * it, start a second run). Off (one env lookup) unless set.
 */
export async function pausePoint(event: string): Promise<void> {
  const spec = process.env.BLOCKVAULT_TEST_PAUSE_AT;
  if (!spec || !spec.startsWith(`${event}:`)) return;
  const path = spec.slice(event.length + 1);
  const { existsSync, writeFileSync } = await import('node:fs');
  writeFileSync(`${path}.reached`, String(process.pid));
  const deadline = Date.now() + 120_000;
  while (!existsSync(`${path}.go`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
