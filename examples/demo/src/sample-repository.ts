import { execFile } from "node:child_process";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The files of a small TypeScript project the demo hands to the agent. */
export const SAMPLE_FILES: Record<string, string> = {
  "package.json": `${JSON.stringify(
    { name: "sample-math", version: "1.0.0", type: "module", scripts: { test: "node --test" } },
    null,
    2,
  )}\n`,
  "tsconfig.json": `${JSON.stringify({ compilerOptions: { strict: true, module: "NodeNext", target: "ES2022" } }, null, 2)}\n`,
  "README.md": "# sample-math\n\nSmall math helpers.\n",
  "src/math.ts": "/** Adds two numbers. */\nexport function add(a: number, b: number): number {\n  return a + b;\n}\n",
};

/** Creates a bare repository with one commit of {@link SAMPLE_FILES} on `main`. Returns its path and its parent folder. */
export async function createSampleRepository(parent?: string): Promise<{ root: string; repo: string }> {
  const root = parent ?? (await mkdtemp(join(tmpdir(), "running-agent-demo-")));
  const work = join(root, "work");
  const repo = join(root, "sample-math.git");
  await mkdir(join(work, "src"), { recursive: true });
  for (const [path, content] of Object.entries(SAMPLE_FILES)) await writeFile(join(work, path), content);
  const git = (cwd: string, ...args: string[]) =>
    run("git", ["-c", "user.name=Demo", "-c", "user.email=demo@example.invalid", "-c", "init.defaultBranch=main", ...args], { cwd });
  await git(work, "init", "-q");
  await git(work, "add", "-A");
  await git(work, "commit", "-q", "-m", "Initial commit");
  await git(root, "clone", "-q", "--bare", work, repo);
  return { root, repo };
}
