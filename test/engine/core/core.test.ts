import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAllZero } from '../../../engine/core/digest.js';
import { checkName } from '../../../engine/core/names.js';
import { humanBytes } from '../../../engine/core/human.js';

describe('zero detection', () => {
  it('is true exactly when every byte is zero', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 200_000 }), fc.option(fc.nat(), { nil: undefined }), (length, at) => {
      const bytes = new Uint8Array(length);
      if (at !== undefined && length > 0) bytes[at % length] = 1;
      expect(isAllZero(bytes)).toBe(at === undefined || length === 0);
    }));
  });
});

describe('vm and disk names', () => {
  it('accepts ordinary names', () => {
    for (const n of ['web01', 'db-2.prod', 'disk_0', 'sda', 'A+B']) expect(checkName('vm', n)).toBe(n);
  });
  it('refuses path tricks and control characters', () => {
    for (const n of ['a/b', '..', 'a..b', '.hidden', '-x', 'tab\there', 'nl\n', '', 'x'.repeat(200)]) {
      expect(() => checkName('disk', n)).toThrow(/disk/);
    }
  });
});

describe('human sizes', () => {
  it('uses binary units', () => {
    expect(humanBytes(512)).toBe('512 B');
    expect(humanBytes(1536)).toBe('1.50 KiB');
    expect(humanBytes(4 * 1024 ** 3)).toBe('4.00 GiB');
  });
});
