// Where each command's wall time went, from BLOCKVAULT_PHASES marks
// (engine/core/phases.ts): marks are grouped into the phases the cold
// benchmark reports, medians over its runs, wall and CPU (all threads).
import type { PhaseMark } from '../engine/core/phases.js';
import { median } from './measure.js';

export interface PhaseRun { wallSeconds: number; marks: PhaseMark[] }

const groups: Array<[string, string[]]> = [
  ['start-up, imports', ['main', 'command-loaded', 'digests-ready']],
  ['repository open', ['source-open', 'config-read', 'locked', 'index-opened', 'repo-open']],
  ['plan, point open', ['planned', 'point-open']],
  ['data', ['data-read', 'data-written']],
  ['seal, commit, fsync', ['sealed', 'committed', 'synced']],
  ['close', ['exit']],
];

export interface PhaseSummary { [command: string]: { wallSeconds: number; phases: Array<{ name: string; wallMs: number; cpuMs: number }> } }

function split(run: PhaseRun): Map<string, { wallMs: number; cpuMs: number }> {
  const out = new Map<string, { wallMs: number; cpuMs: number }>(groups.map(([g]) => [g, { wallMs: 0, cpuMs: 0 }]));
  let previous = { wallMs: 0, cpuMs: 0 };
  for (const mark of run.marks) {
    const group = groups.find(([, names]) => names.includes(mark.name))?.[0] ?? 'close';
    const slot = out.get(group)!;
    slot.wallMs += mark.wallMs - previous.wallMs;
    slot.cpuMs += mark.cpuMs - previous.cpuMs;
    previous = mark;
  }
  // From the last mark to the end as /usr/bin/time saw it: process teardown.
  out.set('process exit', { wallMs: Math.max(0, run.wallSeconds * 1000 - previous.wallMs), cpuMs: NaN });
  return out;
}

export function summarize(phases: Record<string, PhaseRun[]>): PhaseSummary {
  const summary: PhaseSummary = {};
  for (const [command, runs] of Object.entries(phases)) {
    if (runs.length === 0) continue;
    const splits = runs.map(split);
    const names = [...splits[0].keys()];
    summary[command] = {
      wallSeconds: median(runs.map((r) => r.wallSeconds)),
      phases: names.map((name) => ({ name, wallMs: median(splits.map((s) => s.get(name)!.wallMs)), cpuMs: median(splits.map((s) => s.get(name)!.cpuMs)) })),
    };
  }
  return summary;
}

export function breakdownTable(corpus: string, cold: boolean, summary: PhaseSummary): string {
  const names = [...groups.map(([g]) => g), 'process exit'];
  const lines = [`| ${corpus}, ${cold ? 'cold' : 'warm'}: where the time went, ms wall (CPU, all threads) | ${names.join(' | ')} | total s |`, `|---|${names.map(() => '---:').join('|')}|---:|`];
  for (const [command, s] of Object.entries(summary)) {
    const cells = names.map((n) => {
      const p = s.phases.find((x) => x.name === n)!;
      return Number.isNaN(p.cpuMs) ? p.wallMs.toFixed(0) : `${p.wallMs.toFixed(0)} (${p.cpuMs.toFixed(0)})`;
    });
    lines.push(`| ${command} | ${cells.join(' | ')} | ${s.wallSeconds.toFixed(2)} |`);
  }
  return lines.join('\n');
}
