// The retention policy against a reference calendar model built another way
// (sv-SE date strings for days, months and years, the textbook ISO-week
// formula), over random point times across ten years and time zones with
// daylight-saving changes (Lord Howe's is half an hour).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyRetention, checkRules, isoWeek, periods, timeZoneFormatter, type KeepRules, type Period } from '../../../engine/retention/policy.js';

const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata'];

/** sv-SE formats as "2026-03-29 01:59:00": the local calendar fields, read another way than the policy reads them. */
function local(date: Date, timeZone: string): { day: string; hour: string } {
  const text = date.toLocaleString('sv-SE', { timeZone, hour12: false });
  return { day: text.slice(0, 10), hour: text.slice(0, 13) };
}

/** ISO week by the textbook formula: week = floor((ordinal - weekday + 10) / 7), with the year's edges. */
function referenceWeek(day: string): string {
  const [y, m, d] = day.split('-').map(Number);
  const ordinal = (Date.UTC(y, m - 1, d) - Date.UTC(y, 0, 1)) / 86_400_000 + 1;
  const weekday = ((new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7) + 1; // Monday 1 .. Sunday 7
  const weeksIn = (year: number) => {
    const p = (x: number) => (x + Math.floor(x / 4) - Math.floor(x / 100) + Math.floor(x / 400)) % 7;
    return p(year) === 4 || p(year - 1) === 3 ? 53 : 52;
  };
  const week = Math.floor((ordinal - weekday + 10) / 7);
  if (week < 1) return `${y - 1}-W${weeksIn(y - 1)}`;
  if (week > weeksIn(y)) return `${y + 1}-W1`;
  return `${y}-W${week}`;
}

function referenceKey(date: Date, period: Period, zone: string): string {
  const { day, hour } = local(date, zone);
  switch (period) {
    case 'hourly': return hour;
    case 'daily': return day;
    case 'weekly': return referenceWeek(day);
    case 'monthly': return day.slice(0, 7);
    case 'yearly': return day.slice(0, 4);
  }
}

/** Kept ids by the model: the newest point of each of the N newest periods that hold one, and the N newest points. */
function referenceKept(times: Array<{ id: string; time: string }>, rules: KeepRules, zone: string): Set<string> {
  const newestFirst = [...times].sort((a, b) => (a.time === b.time ? b.id.localeCompare(a.id) : b.time.localeCompare(a.time)));
  const kept = new Set(newestFirst.slice(0, rules.last ?? 0).map((p) => p.id));
  for (const period of periods) {
    const newestOfPeriod = new Map<string, string>();
    for (const p of newestFirst) {
      const key = referenceKey(new Date(p.time), period, zone);
      if (!newestOfPeriod.has(key)) newestOfPeriod.set(key, p.id);
    }
    [...newestOfPeriod.values()].slice(0, rules[period] ?? 0).forEach((id) => kept.add(id));
  }
  return kept;
}

const hour = 3_600_000;
/** Point times: spread over ten years, or crowded around one new year (ISO weeks straddle two years) or one daylight-saving change. */
const timesArb = fc.oneof(
  fc.array(fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }), { minLength: 1, maxLength: 60 }),
  fc.tuple(fc.integer({ min: 2020, max: 2029 }), fc.array(fc.integer({ min: -10 * 24, max: 10 * 24 }), { minLength: 1, maxLength: 60 }))
    .map(([y, hs]) => hs.map((h) => Date.UTC(y, 0, 1) + h * hour)),
  // The last Sundays of March and October, the first Sundays of April and November (southern and northern changes).
  fc.tuple(fc.integer({ min: 2020, max: 2029 }), fc.constantFrom([2, 29], [9, 29], [3, 4], [10, 4]), fc.array(fc.integer({ min: -72, max: 72 }), { minLength: 1, maxLength: 60 }))
    .map(([y, [m, d], hs]) => hs.map((h) => Date.UTC(y, m, d) + h * hour + (h % 2) * 1_800_000)),
);
const rulesArb = fc.record({
  last: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
  hourly: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
  daily: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }),
  weekly: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
  monthly: fc.option(fc.integer({ min: 0, max: 13 }), { nil: undefined }),
  yearly: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
}).filter((r) => Object.values(r).some((n) => (n ?? 0) > 0));

describe('retention policy', () => {
  it('keeps exactly what the reference calendar model keeps, with a reason for each', () => {
    fc.assert(fc.property(timesArb, rulesArb, fc.constantFrom(...zones), (times, rules, zone) => {
      const points = times.map((t, i) => ({ id: `p${String(i).padStart(3, '0')}`, time: new Date(t).toISOString() }));
      const decisions = applyRetention(points, rules, timeZoneFormatter(zone));
      expect(new Set(decisions.filter((d) => d.keep).map((d) => d.id))).toEqual(referenceKept(points, rules, zone));
      for (const d of decisions) expect(d.keep).toBe(d.reasons.length > 0);
      expect(decisions[0].keep).toBe(true); // the newest point is always kept
      const budget = Object.values(rules).reduce((a, n) => a + (n ?? 0), 0);
      expect(decisions.filter((d) => d.keep).length).toBeLessThanOrEqual(budget);
    }), { numRuns: 300 });
  });

  it('computes ISO weeks like the textbook formula, across year edges', () => {
    fc.assert(fc.property(fc.integer({ min: Date.UTC(1999, 11, 20), max: Date.UTC(2040, 0, 10) }), (t) => {
      const day = new Date(t).toISOString().slice(0, 10);
      const [y, m, d] = day.split('-').map(Number);
      const w = isoWeek(y, m, d);
      expect(`${w.year}-W${w.week}`).toBe(referenceWeek(day));
    }), { numRuns: 2000 });
  });

  it('refuses rules that keep nothing, negative or fractional counts, and unknown time zones', () => {
    expect(() => checkRules({})).toThrow(/these rules keep nothing/);
    expect(() => checkRules({ last: 0 })).toThrow(/these rules keep nothing/);
    expect(() => checkRules({ daily: -1 })).toThrow(/--keep-daily -1: expected a whole number from 0/);
    expect(() => checkRules({ weekly: 1.5 })).toThrow(/--keep-weekly 1.5/);
    expect(() => timeZoneFormatter('Mars/Olympus')).toThrow(/--tz "Mars\/Olympus": not a time zone/);
  });
});
