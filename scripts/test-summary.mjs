// Sums the JSON reports of every package's vitest run into one closing line:
// "N passed, N failed, N skipped". Exits non-zero when a report is missing or counts a failure.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const [folder, ...expected] = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
const seen = new Set();
for (const file of readdirSync(folder).filter((name) => name.endsWith(".json"))) {
  const report = JSON.parse(readFileSync(join(folder, file), "utf8"));
  seen.add(file.replace(/\.json$/, ""));
  passed += report.numPassedTests;
  failed += report.numFailedTests + (report.numRuntimeErrors ?? 0);
  skipped += report.numPendingTests + report.numTodoTests;
}
const missing = expected.filter((name) => !seen.has(name));
if (missing.length > 0) console.error(`test-summary: no report from ${missing.join(", ")}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed > 0 || missing.length > 0 || passed === 0 ? 1 : 0;
