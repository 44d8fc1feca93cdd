import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

describe("the demo", () => {
  it("runs the whole loop offline and prints the branch, the change request and a diff with the scripted edit", async () => {
    const env = { ...process.env };
    delete env.GEMINI_API_KEY;
    const { stdout } = await run(process.execPath, ["--conditions=source", "--import", "tsx", "src/demo.ts"], { cwd: packageRoot, env, timeout: 150_000 });
    expect(stdout).toMatch(/Status: completed/);
    expect(stdout).toMatch(/Branch: running-agent\/add-a-multiply/);
    expect(stdout).toMatch(/Change request #1: local:\/\//);
    expect(stdout).toContain("+export function multiply(a: number, b: number): number {");
    expect(stdout).toMatch(/teardown\s+\d+/);
    // The check ran and passed before the change request opened.
    const checkLine = stdout.indexOf("check multiply-exported passed");
    expect(checkLine).toBeGreaterThan(0);
    expect(checkLine).toBeLessThan(stdout.indexOf("change request #1 opened"));
  });
});
