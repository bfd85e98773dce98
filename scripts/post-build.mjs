// After tsc: make the CLI entry executable so `npx blockvault` and the bin link work.
import { chmodSync } from 'node:fs';
chmodSync(new URL('../dist/engine/cli/main.js', import.meta.url), 0o755);
