// Audits the server's GraphQL over HTTP against the specification with graphql-http's
// auditServer, prints every result, and fails on any error or warning.
// Usage: node audit.mjs <httpUrl>   (e.g. http://127.0.0.1:8080)
import { auditServer } from 'graphql-http';

const [httpUrl] = process.argv.slice(2);
if (!httpUrl) {
  console.error('usage: node audit.mjs <httpUrl>');
  process.exit(2);
}
const url = new URL('/graphql', httpUrl).href;

const watchdog = setTimeout(() => {
  console.error('audit: FAILED: the audit did not finish within 120 s');
  process.exit(1);
}, 120_000);

const results = await auditServer({ url });
clearTimeout(watchdog);

const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
const failures = [];
for (const result of results) {
  counts[result.status] = (counts[result.status] ?? 0) + 1;
  if (result.status === 'ok') {
    console.log(`ok      ${result.id} ${result.name}`);
    continue;
  }
  let body = '';
  try {
    body = await result.response.text();
  } catch {
    body = '(the body could not be read)';
  }
  const status = result.response ? `${result.response.status} ${result.response.headers.get('content-type') ?? '(no content-type)'}` : '';
  const line = `${result.status.padEnd(7)} ${result.id} ${result.name}\n        reason: ${result.reason}\n        response: ${status} ${body.slice(0, 400)}`;
  console.log(line);
  if (result.status === 'warn' || result.status === 'error') failures.push(line);
}

console.log(
  `audit: ${results.length} audits: ${counts.ok} ok, ${counts.notice} notices, ${counts.warn} warnings, ${counts.error} errors`,
);
if (failures.length > 0) {
  console.error(`audit: FAILED: ${failures.length} warnings or errors:\n${failures.join('\n')}`);
  process.exit(1);
}
