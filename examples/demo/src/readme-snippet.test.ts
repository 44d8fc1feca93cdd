import { execFile } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { createTestRepository, startScriptedModelServer } from "@running-agent/core/testing";
import { DEMO_SUMMARY, demoScript, MULTIPLY_SOURCE } from "./demo-script.js";
import { SAMPLE_FILES } from "./sample-repository.js";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");

/** The first ```js block after `heading` in a README, exactly as a reader sees it. */
async function snippet(readmePath: string, heading: string): Promise<string> {
  const readme = await readFile(join(root, readmePath), "utf8");
  const section = readme.slice(readme.indexOf(heading));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error(`${readmePath} has no js block after ${heading}`);
  return match[1]!;
}

const embeddingSnippet = () => snippet("README.md", "## Embedding");

describe("the README's embedding snippet", () => {
  it("is the same in the root README and in the core package's README", async () => {
    expect(await snippet("packages/core/README.md", "# @running-agent/core")).toBe(await embeddingSnippet());
  });

  it("runs as written and opens a change request with the scripted edit", async () => {
    const snippet = await embeddingSnippet();
    expect(snippet.split("\n").length).toBeLessThanOrEqual(20);
    await using repo = await createTestRepository(SAMPLE_FILES);
    await using model = await startScriptedModelServer({ script: demoScript() });
    // Next to this package, so that "@running-agent/core" resolves from the workspace.
    const file = join(here, "..", `.readme-snippet-${process.pid}.mjs`);
    await writeFile(file, snippet);
    try {
      const { stdout } = await run(process.execPath, ["--conditions=source", "--import", "tsx", file, repo.path], {
        cwd: join(here, ".."),
        env: {
          ...process.env,
          MODEL: "openai-compatible/scripted",
          OPENAI_COMPATIBLE_BASE_URL: model.url,
          OPENAI_COMPATIBLE_API_KEY: "snippet-key",
        },
        timeout: 150_000,
      });
      const last = stdout.trim().split("\n").at(-1)!;
      const [status, branch, url] = last.split(" ");
      expect(status).toBe("completed");
      expect(stdout).toContain("pull-request completed");
      expect(await repo.git("show", `${branch}:src/math.ts`)).toBe(MULTIPLY_SOURCE);
      expect(url).toMatch(/^local:\/\//);
      expect(await repo.git("log", "-1", "--format=%B", branch!)).toContain(DEMO_SUMMARY);
    } finally {
      await rm(file, { force: true });
    }
  });
});
