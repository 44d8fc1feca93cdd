import { appendFileSync } from "node:fs";
import type { Reporter, TestCase } from "vitest/node";

/**
 * Records each test that passed only when retried (vitest's `flaky`), one line per test in
 * `file`, so that `scripts/test-summary.mjs` names every one of them: a retried pass is a defect
 * to fix, never one to hide.
 */
export class RetriedTestsReporter implements Reporter {
  constructor(private readonly file: string) {}

  onTestCaseResult(testCase: TestCase): void {
    const diagnostic = testCase.diagnostic();
    if (!diagnostic?.flaky || testCase.result().state !== "passed") return;
    appendFileSync(this.file, `${testCase.module.relativeModuleId} > ${testCase.fullName} (retried ${diagnostic.retryCount}x)\n`);
  }
}
