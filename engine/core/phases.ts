// Where a command's wall time goes. With BLOCKVAULT_PHASES=<file>, each
// command marks its phases (repository open, planning, data, sync, commit)
// and main writes one JSON line to <file> at exit: every mark's wall
// milliseconds since the process started (Node's own start-up included) and
// the process's CPU milliseconds (all threads) at that instant. The cold
// benchmark reads it to report a breakdown; off, a mark costs one branch.
import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface PhaseMark { name: string; wallMs: number; cpuMs: number }

const target = process.env.BLOCKVAULT_PHASES;
const marks: PhaseMark[] = [];

export function phase(name: string): void {
  if (!target) return;
  const cpu = process.cpuUsage();
  marks.push({ name, wallMs: performance.now(), cpuMs: (cpu.user + cpu.system) / 1000 });
}

/** Called once by main before the process exits. */
export function writePhases(command: string, exitCode: number): void {
  if (!target) return;
  phase('exit');
  const bootstrapMs = performance.nodeTiming.bootstrapComplete;
  appendFileSync(target, `${JSON.stringify({ command, exitCode, bootstrapMs, marks })}\n`);
}
