// Module hooks for tests: appends the URL of every ES module resolved to the
// file named by BV_TRACE_IMPORTS (test/e2e/output.test.ts: what a command loads).
import { appendFileSync } from 'node:fs';

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (process.env.BV_TRACE_IMPORTS) appendFileSync(process.env.BV_TRACE_IMPORTS, `${resolved.url}\n`);
  return resolved;
}
