import { workingDirectoryOf, type ScriptedTurn } from "@running-agent/core/offline";

/** The edit the scripted model makes: a `multiply` function next to `add`. */
export const MULTIPLY_SOURCE =
  "/** Adds two numbers. */\nexport function add(a: number, b: number): number {\n  return a + b;\n}\n\n" +
  "/** Multiplies two numbers. */\nexport function multiply(a: number, b: number): number {\n  return a * b;\n}\n";

export const DEMO_TASK = "Add a multiply(a, b) function to src/math.ts, next to add.";

export const DEMO_SUMMARY = "Added `multiply(a, b)` to `src/math.ts`, documented like `add`.";

/** What the scripted model does, turn by turn: read the file, rewrite it, then summarise. */
export function demoScript(): ScriptedTurn[] {
  return [
    (request) => ({ toolCalls: [{ name: "read", arguments: { filePath: `${workingDirectoryOf(request)}/src/math.ts` } }] }),
    (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/src/math.ts`, content: MULTIPLY_SOURCE } }] }),
    { text: DEMO_SUMMARY },
  ];
}

/** The demo's check: the task asked for an exported multiply next to add; the PR opens only once that holds. */
export const DEMO_CHECKS = [{ name: "multiply-exported", command: "grep -q 'export function multiply' src/math.ts" }];
