// The native crate's own unit tests (native/src/cdc.rs: the scanners' hot
// loops), run by `cargo test` from here, so that the README's test command
// runs them too. std only: nothing is downloaded.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('native crate (cargo test)', () => {
  it('passes its Rust unit tests', () => {
    const cwd = new URL('../../native/', import.meta.url).pathname;
    const r = spawnSync('cargo', ['test', '--release', '--offline', '--quiet'], { cwd, encoding: 'utf8', timeout: 300_000 });
    expect(r.error, 'cargo must be installed (it builds the native addon too)').toBeUndefined();
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/test result: ok\. [1-9]\d* passed; 0 failed/);
  }, 300_000);
});
