// Retention (grandfather-father-son, as restic and Proxmox Backup Server
// define it). Pure: restore points in, a keep-or-forget decision with its
// reasons out. Each --keep-<period> N keeps the newest point in each of the N
// newest periods (in a time zone) that hold a point; --keep-last N the N
// newest points; the rules combine (a point any rule keeps is kept).
import { BlockvaultError } from '../core/errors.js';

export const periods = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type Period = (typeof periods)[number];
export type KeepRules = Partial<Record<'last' | Period, number>>;
/** Counts above this are surely a typo (a thousand years of yearly points is not). */
export const keepCountMax = 100_000;

export interface Candidate { id: string; time: string }
export interface Decision { id: string; time: string; keep: boolean; reasons: string[] }

/** Refuses rules that keep nothing, or counts that are not whole numbers from 0 to keepCountMax. */
export function checkRules(rules: KeepRules): void {
  for (const [rule, n] of Object.entries(rules)) {
    if (n === undefined) continue;
    if (!Number.isInteger(n) || n < 0 || n > keepCountMax) {
      throw new BlockvaultError('USAGE', `--keep-${rule} ${n}: expected a whole number from 0 to ${keepCountMax}`);
    }
  }
  if (!Object.values(rules).some((n) => (n ?? 0) > 0)) {
    throw new BlockvaultError('USAGE', 'these rules keep nothing: give at least one --keep-* above 0 (to forget points by name, name them)');
  }
}

/** Local calendar fields of an instant in a time zone. */
function localParts(date: Date, formatter: Intl.DateTimeFormat): { y: number; m: number; d: number; h: number } {
  const parts = Object.fromEntries(formatter.formatToParts(date).map((p) => [p.type, p.value]));
  return { y: Number(parts.year), m: Number(parts.month), d: Number(parts.day), h: Number(parts.hour) % 24 };
}

/** ISO 8601 week of a calendar date: weeks start on Monday; week 1 holds the year's first Thursday. */
export function isoWeek(y: number, m: number, d: number): { year: number; week: number } {
  const date = new Date(Date.UTC(y, m - 1, d));
  const weekday = (date.getUTCDay() + 6) % 7; // Monday 0
  date.setUTCDate(date.getUTCDate() - weekday + 3); // the Thursday of this week decides its year
  const year = date.getUTCFullYear();
  const firstThursday = new Date(Date.UTC(year, 0, 4));
  firstThursday.setUTCDate(firstThursday.getUTCDate() - ((firstThursday.getUTCDay() + 6) % 7) + 3);
  return { year, week: 1 + Math.round((date.getTime() - firstThursday.getTime()) / (7 * 86_400_000)) };
}

/** The period an instant falls in, as a key equal for instants of one period. */
export function periodKey(date: Date, period: Period, formatter: Intl.DateTimeFormat): string {
  const { y, m, d, h } = localParts(date, formatter);
  switch (period) {
    case 'hourly': return `${y}-${m}-${d} ${h}h`;
    case 'daily': return `${y}-${m}-${d}`;
    case 'weekly': { const w = isoWeek(y, m, d); return `${w.year}-W${w.week}`; }
    case 'monthly': return `${y}-${m}`;
    case 'yearly': return `${y}`;
  }
}

export function timeZoneFormatter(timeZone: string | undefined): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric' });
  } catch (err) {
    throw new BlockvaultError('USAGE', `--tz ${JSON.stringify(timeZone)}: not a time zone this system knows (an IANA name like Europe/Berlin)`, { cause: err });
  }
}

/** Decides, newest first, which points the rules keep, and why. */
export function applyRetention(candidates: readonly Candidate[], rules: KeepRules, formatter: Intl.DateTimeFormat): Decision[] {
  checkRules(rules);
  const sorted = [...candidates].sort((a, b) => (a.time === b.time ? b.id.localeCompare(a.id) : b.time.localeCompare(a.time)));
  const decisions = sorted.map((c) => ({ id: c.id, time: c.time, keep: false, reasons: [] as string[] }));
  decisions.slice(0, rules.last ?? 0).forEach((d, i) => d.reasons.push(`last ${i + 1}`));
  for (const period of periods) {
    const n = rules[period] ?? 0;
    let used = 0;
    let previous: string | null = null;
    for (const d of decisions) {
      if (used >= n) break;
      const key = periodKey(new Date(d.time), period, formatter);
      if (key === previous) continue;
      previous = key;
      used += 1;
      d.reasons.push(`${period} ${key}`);
    }
  }
  for (const d of decisions) d.keep = d.reasons.length > 0;
  return decisions;
}
