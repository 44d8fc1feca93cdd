// Sums the JSON reports of every package's vitest run into one closing line:
// "N passed, N failed, N skipped", preceded by each failed test's name and the first lines of its
// error (CI keeps only the tail of a long log, so the failure must be named there).
// Exits non-zero when a report is missing or counts a failure.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

const [folder, ...expected] = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
const seen = new Set();
const failures = [];
for (const file of readdirSync(folder).filter((name) => name.endsWith(".json"))) {
  const report = JSON.parse(readFileSync(join(folder, file), "utf8"));
  const name = file.replace(/\.json$/, "");
  seen.add(name);
  passed += report.numPassedTests;
  failed += report.numFailedTests + (report.numRuntimeErrors ?? 0);
  skipped += report.numPendingTests + report.numTodoTests;
  for (const suite of report.testResults ?? []) {
    const where = relative(process.cwd(), suite.name);
    const failedTests = (suite.assertionResults ?? []).filter((test) => test.status === "failed");
    for (const test of failedTests) {
      failures.push({ title: `${where} > ${test.fullName}`, messages: test.failureMessages ?? [] });
    }
    if (failedTests.length === 0 && suite.status === "failed" && suite.message) {
      failures.push({ title: where, messages: [suite.message] });
    }
  }
}
for (const failure of failures) {
  console.error(`FAILED ${failure.title}`);
  const lines = failure.messages.join("\n").split("\n").filter((line) => line.trim() !== "");
  for (const line of lines.slice(0, 12)) console.error(`    ${line}`);
}
// Tests that passed only on their retry (vitest.shared.ts records them): named, since each is a
// defect to fix, and counted as passed.
const retried = readdirSync(folder)
  .filter((name) => name.endsWith(".retried.txt"))
  .flatMap((name) => readFileSync(join(folder, name), "utf8").split("\n").filter(Boolean).map((line) => `${name.replace(/\.retried\.txt$/, "")}: ${line}`));
for (const line of retried) console.error(`PASSED ONLY ON RETRY ${line}`);
const missing = expected.filter((name) => !seen.has(name));
if (missing.length > 0) console.error(`test-summary: no report from ${missing.join(", ")}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped, ${retried.length} passed only on retry${retried.length ? " (named above)" : ""}`);
process.exitCode = failed > 0 || missing.length > 0 || passed === 0 ? 1 : 0;
