import { mkdtemp, readFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createTestRepository, startScriptedModelServer, type ScriptedTurn, type TestRepository, workingDirectoryOf } from "@running-agent/core/testing";
import { execFileSync } from "node:child_process";
import { startGitHubServer } from "@running-agent/git-github/testing";
import { startGitLabServer } from "@running-agent/git-gitlab/testing";
import { rm } from "node:fs/promises";
import { installWithCoreOnly, PACKAGE_ROOT, processesUsing, runCli, runCliInTerminal, startCli, startCliInTerminal, type CliOutcome } from "./testing/cli-process.js";

const MODEL_KEY = "scripted-model-key";
// ESC, the start of every ANSI escape sequence (colors, cursor movement, clearing lines).
const ESCAPE = "\u001b";

// util-linux's `script` makes the pseudo terminal for the terminal display test (scripts/setup.sh installs it).
const hasScript = (() => {
  try {
    execFileSync("script", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

// The Docker test needs a running engine with the default sandbox image (scripts/test.sh starts
// the engine and builds the image before the tests; without them the test is skipped).
const dockerImage = "running-agent/sandbox:opencode-1.18.33";
const hasDockerImage = (() => {
  try {
    execFileSync("docker", ["image", "inspect", "--format", "{{.Id}}", dockerImage], { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
})();

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function repository(): Promise<TestRepository> {
  const repo = await createTestRepository({ "README.md": "# demo\n" });
  cleanups.push(() => repo.remove());
  return repo;
}

async function modelServer(script: ScriptedTurn[]) {
  const model = await startScriptedModelServer({ apiKey: MODEL_KEY, script });
  cleanups.push(() => model.close());
  return model;
}

function modelFlags(url: string): string[] {
  return ["--model", "openai-compatible/scripted-model", "--model-base-url", url];
}

/** No sandbox folder and no process may outlive the CLI. */
async function expectNothingLeft(tempDirectory: string): Promise<void> {
  expect(await processesUsing(tempDirectory)).toEqual([]);
  expect((await readdir(tempDirectory)).filter((name) => name.startsWith("running-agent-"))).toEqual([]);
}

function describeOutcome(outcome: CliOutcome): string {
  return `exit ${outcome.exitCode}\n--- stdout\n${outcome.stdout}\n--- stderr\n${outcome.stderr}`;
}

describe("running-agent (the binary)", () => {
  it("prints help and its version", async () => {
    const help = await runCli(["--help"]);
    cleanups.push(help.remove);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain("running-agent run --repo <url|path> --task");
    const runHelp = await runCli(["run", "--help"]);
    cleanups.push(runHelp.remove);
    expect(runHelp.stdout).toContain("--unisolated");
    for (const text of [help.stdout, runHelp.stdout]) {
      expect(text).toMatch(/143 stopped \(SIGTERM\)/);
      expect(text).toMatch(/Progress goes to stderr[;,] the result \(pull request, branch, changes/);
    }
    const version = await runCli(["--version"]);
    cleanups.push(version.remove);
    const { version: expected } = JSON.parse(await readFile(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string };
    expect(version).toMatchObject({ exitCode: 0, stdout: `${expected}\n` });
  });

  it("exits 64 with a helpful message on a bad command line, before creating anything", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["run", "--task", "x"], /--repo is required/],
      [["run", "--repo", "/tmp/x.git", "--task", "x", "--sandbox", "kubernetes"], /--sandbox must be one of local, docker, modal/],
      [["run", "--repo", "/tmp/x.git", "--tsak", "x"], /Unknown option --tsak\. Did you mean --task\?/],
      [["frobnicate"], /Unknown command "frobnicate"/],
    ];
    for (const [args, message] of cases) {
      const outcome = await runCli(args);
      cleanups.push(outcome.remove);
      expect(outcome.exitCode, describeOutcome(outcome)).toBe(64);
      expect(outcome.stderr).toMatch(message);
      expect(outcome.stderr).toMatch(/Run `running-agent (run )?--help` for the options\./);
      expect(outcome.stdout).toBe("");
      expect((await readdir(outcome.tempDirectory)).filter((name) => name.startsWith("running-agent-"))).toEqual([]);
    }
  });

  it("works with only the core installed, and names the adapter package to install when one is asked for", async () => {
    const root = await installWithCoreOnly();
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const repo = await repository();
    const version = await runCli(["--version"], {}, root);
    cleanups.push(version.remove);
    expect(version.exitCode, describeOutcome(version)).toBe(0);
    const docker = await runCli(["run", "--repo", repo.path, "--task", "x", "--sandbox", "docker"], {}, root);
    cleanups.push(docker.remove);
    expect(docker.exitCode, describeOutcome(docker)).toBe(1);
    expect(docker.stderr).toMatch(/^Error: SANDBOX_UNAVAILABLE: @running-agent\/sandbox-docker is not installed\. Install it next to the CLI/m);
    const github = await runCli(["run", "--repo", "https://github.com/octo/app", "--task", "x"], {}, root);
    cleanups.push(github.remove);
    expect(github.exitCode, describeOutcome(github)).toBe(1);
    expect(github.stderr).toMatch(/^Error: UNSUPPORTED_REPO: @running-agent\/git-github is not installed/m);
    const gitlab = await runCli(["run", "--repo", "https://gitlab.com/acme/app", "--task", "x"], {}, root);
    cleanups.push(gitlab.remove);
    expect(gitlab.exitCode, describeOutcome(gitlab)).toBe(1);
    expect(gitlab.stderr).toMatch(/^Error: UNSUPPORTED_REPO: @running-agent\/git-gitlab is not installed/m);
  });

  it("exits 1 with the error's code and message when the task fails", async () => {
    const repo = await repository();
    const outcome = await runCli(["run", "--repo", repo.path, "--task", "Add notes", "--base", "no-such-branch", "--unisolated", ...modelFlags("http://127.0.0.1:9/v1")], {
      OPENAI_COMPATIBLE_API_KEY: MODEL_KEY,
    });
    cleanups.push(outcome.remove);
    expect(outcome.exitCode, describeOutcome(outcome)).toBe(1);
    expect(outcome.stderr).toMatch(/^Error: BASE_BRANCH_NOT_FOUND \(validate\): The base branch "no-such-branch" does not exist/m);
    // Printed once: the progress line names the phase and the code, the closing line says why.
    expect(outcome.stderr.split('The base branch "no-such-branch" does not exist').length, outcome.stderr).toBe(2);
    expect(outcome.stderr).toMatch(/validate failed: BASE_BRANCH_NOT_FOUND$/m);
    await expectNothingLeft(outcome.tempDirectory);

    const json = await runCli(["run", "--repo", repo.path, "--task", "Add notes", "--base", "no-such-branch", "--json", ...modelFlags("http://127.0.0.1:9/v1")], {
      OPENAI_COMPATIBLE_API_KEY: MODEL_KEY,
    });
    cleanups.push(json.remove);
    expect(json.exitCode, describeOutcome(json)).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: "failed", error: { code: "BASE_BRANCH_NOT_FOUND", phase: "validate" } });
    const lastLine = JSON.parse(json.stderr.trim().split("\n").at(-1)!) as unknown;
    expect(lastLine).toMatchObject({ type: "error", error: { code: "BASE_BRANCH_NOT_FOUND" } });
  });

  it("says a missing model setting in the CLI's terms (flags and variables), not the library's", async () => {
    const repo = await repository();
    const noBaseUrl = await runCli(["run", "--repo", repo.path, "--task", "Add notes", "--model", "openai-compatible/some-model"], { OPENAI_COMPATIBLE_BASE_URL: "" });
    cleanups.push(noBaseUrl.remove);
    expect(noBaseUrl.exitCode, describeOutcome(noBaseUrl)).toBe(1);
    expect(noBaseUrl.stderr).toMatch(/^Error: INVALID_MODEL \(validate\): .*pass --model-base-url http:\/\/host:port\/v1 or set OPENAI_COMPATIBLE_BASE_URL\.$/m);
    const noKey = await runCli(["run", "--repo", repo.path, "--task", "Add notes", "--model", "anthropic/claude-sonnet-4-5"]);
    cleanups.push(noKey.remove);
    expect(noKey.exitCode, describeOutcome(noKey)).toBe(1);
    expect(noKey.stderr).toMatch(/^Error: MISSING_API_KEY \(validate\): No API key for "anthropic\/claude-sonnet-4-5": set ANTHROPIC_API_KEY in the environment\.$/m);
    for (const outcome of [noBaseUrl, noKey]) expect(outcome.stderr).not.toContain("model: {");
  });

  it("runs the whole loop offline with --scripted-model: no key, the task recorded in RUNNING_AGENT_TASK.md", async () => {
    const repo = await repository();
    const outcome = await runCli(["run", "--repo", repo.path, "--task", "Write down the plan", "--scripted-model", "--json"]);
    cleanups.push(outcome.remove);
    expect(outcome.exitCode, describeOutcome(outcome)).toBe(0);
    const result = JSON.parse(outcome.stdout) as { status: string; branch: string; changes: Array<{ path: string }> };
    expect(result).toMatchObject({ status: "completed", model: "openai-compatible/scripted-model" });
    expect(result.changes.map((change) => change.path)).toEqual(["RUNNING_AGENT_TASK.md"]);
    expect(await repo.git("show", `${result.branch}:RUNNING_AGENT_TASK.md`)).toContain("Write down the plan");
    await expectNothingLeft(outcome.tempDirectory);
  });

  it("opens a pull request and prints the result as JSON (exit 0), events as JSON lines on stderr", async () => {
    const repo = await repository();
    const model = await modelServer([
      (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: "# Notes\n" } }] }),
      { text: "Added NOTES.md." },
    ]);
    // --model-proxy: the key stays in this process; the model still receives it, through the proxy.
    const outcome = await runCli(["run", "--repo", repo.path, "--task", "Add a NOTES.md file", "--json", "--label", "agent", "--model-proxy", ...modelFlags(model.url)], {
      OPENAI_COMPATIBLE_API_KEY: MODEL_KEY,
    });
    cleanups.push(outcome.remove);
    expect(outcome.exitCode, describeOutcome(outcome)).toBe(0);
    const result = JSON.parse(outcome.stdout) as { status: string; branch: string; commit: string; pullRequest: { url: string }; changes: Array<{ path: string }> };
    expect(result).toMatchObject({ status: "completed", baseBranch: "main", model: "openai-compatible/scripted-model" });
    expect(result.branch).toMatch(/^running-agent\/add-a-notes-md-file/);
    expect(result.changes.map((change) => change.path)).toEqual(["NOTES.md"]);
    expect((await repo.git("rev-parse", `refs/heads/${result.branch}`)).trim()).toBe(result.commit);
    expect(await repo.git("show", `${result.branch}:NOTES.md`)).toBe("# Notes\n");

    const events = outcome.stderr.trim().split("\n").map((line) => JSON.parse(line) as { type: string; phase?: string; status?: string });
    expect(events.filter((event) => event.type === "phase" && event.status === "completed").map((event) => event.phase)).toEqual([
      "validate", "sandbox", "clone", "agent", "collect", "commit", "push", "pull-request", "teardown",
    ]);
    expect(outcome.stdout + outcome.stderr).not.toContain(MODEL_KEY);
    expect(model.chatRequests.length).toBe(2);
    expect(model.chatRequests.every((request) => request.headers.authorization === `Bearer ${MODEL_KEY}`)).toBe(true);
    await expectNothingLeft(outcome.tempDirectory);
  });

  it("with --pool, the task runs on a sandbox whose OpenCode was started ahead of it, and the pool leaves nothing behind", async () => {
    const repo = await repository();
    const model = await modelServer([
      (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: "# Pooled\n" } }] }),
      { text: "Added NOTES.md." },
    ]);
    const outcome = await runCli(["run", "--repo", repo.path, "--task", "Add a NOTES.md file", "--json", "--pool", ...modelFlags(model.url)], { OPENAI_COMPATIBLE_API_KEY: MODEL_KEY });
    cleanups.push(outcome.remove);
    expect(outcome.exitCode, describeOutcome(outcome)).toBe(0);
    expect(JSON.parse(outcome.stdout)).toMatchObject({ status: "completed" });
    const events = outcome.stderr.trim().split("\n").map((line) => JSON.parse(line) as { type: string; pooled?: boolean; message?: string });
    expect(events.find((event) => event.type === "sandbox")).toMatchObject({ pooled: true });
    expect(events.some((event) => event.type === "log" && event.message?.startsWith("Using the OpenCode server started ahead"))).toBe(true);
    await expectNothingLeft(outcome.tempDirectory);
  });

  it("with --prepared-cache, a second run on the same commit and --setup starts from the state the first kept: the setup runs once; with --pool a run on a moved base takes a pooled sandbox of that state", async () => {
    const repo = await repository();
    const cache = await mkdtemp(join(tmpdir(), "cli-prepared-cache-"));
    cleanups.push(() => rm(cache, { recursive: true, force: true }));
    const run = async (task: string, more: string[] = []) => {
      // The setup prints, so that a run of it shows as command.output; the check sees its file in the task's workspace.
      const outcome = await runCli(["run", "--repo", repo.path, "--task", task, "--scripted-model", "--json", "--setup", "echo prepared | tee .setup-marker", "--check", "marker=test -s .setup-marker", "--prepared-cache", cache, ...more]);
      cleanups.push(outcome.remove);
      expect(outcome.exitCode, describeOutcome(outcome)).toBe(0);
      await expectNothingLeft(outcome.tempDirectory);
      return outcome.stderr.trim().split("\n").map((line) => JSON.parse(line) as { type: string; message?: string });
    };
    const first = await run("First task");
    expect(first.filter((event) => event.type === "command.output")).toHaveLength(1);
    expect(first.some((event) => event.type === "log" && event.message?.startsWith("Kept the workspace after setup"))).toBe(true);
    // One state, and beside it when it was made (for maxAgeMs) and its lineage and commit (for a moved base).
    const kept = await readdir(cache);
    const states = kept.filter((name) => !name.includes("."));
    expect(states).toHaveLength(1);
    expect(kept.sort()).toEqual([states[0], `${states[0]}.origin`, `${states[0]}.prepared-at`].sort());
    const second = await run("Second task");
    expect(second.filter((event) => event.type === "command.output")).toEqual([]);
    expect(second.some((event) => event.type === "log" && event.message?.startsWith("Started from the prepared state"))).toBe(true);
    // The base moves (no lockfile): with --pool the pooled sandbox holds the kept state, and the task brings it to the new head.
    const head = await repo.commit({ "docs/moved.md": "moved\n" });
    const third = await run("Third task", ["--pool"]);
    expect(third.find((event) => event.type === "sandbox")).toMatchObject({ pooled: true });
    // The pooled sandbox held the state before the take: the host clone (its commit decides) came first, nothing was copied after.
    expect(third.flatMap((event) => (event.type === "sandbox" ? ["sandbox"] : event.type === "log" && event.message?.startsWith("Cloned ") ? ["cloned"] : []))).toEqual(["cloned", "sandbox"]);
    expect(third.filter((event) => event.type === "command.output")).toEqual([]);
    expect(third.find((event) => event.type === "log" && event.message?.startsWith("Started from the prepared state"))?.message).toContain(`and brought it to ${head.slice(0, 12)}: 1 file brought in`);
  });

  it("works on a GitHub repository through the lazily loaded adapter: draft, labels, reviewer, and the token never printed", async () => {
    const github = await startGitHubServer();
    cleanups.push(() => github.close());
    const repository = await github.createRepository({ owner: "octo", name: "app", files: { "README.md": "# app\n" }, collaborators: ["reviewer-1"] });
    const token = github.grantToken({ login: "agent-bot", permission: "push", repositories: ["octo/app"] });
    const model = await modelServer([
      (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: `# Notes\n` } }] }),
      { text: "Added NOTES.md." },
    ]);
    const outcome = await runCli(
      [
        "run", "--repo", repository.cloneUrl, "--task", "Add a NOTES.md file", "--github-api-url", github.apiUrl, "--github-token", token,
        "--draft", "--label", "agent", "--label", "docs", "--reviewer", "reviewer-1", "--title", "Add notes", "--unisolated", ...modelFlags(model.url),
      ],
      { OPENAI_COMPATIBLE_API_KEY: MODEL_KEY },
    );
    cleanups.push(outcome.remove);
    expect(outcome.exitCode, describeOutcome(outcome)).toBe(0);
    const [pullRequest] = github.pullRequests("octo/app");
    expect(pullRequest).toMatchObject({ title: "Add notes", draft: true, labels: ["agent", "docs"], requestedReviewers: ["reviewer-1"], base: "main" });
    expect(outcome.stdout).toContain(`Pull request: ${github.url}/octo/app/pull/${pullRequest!.number}`);
    expect(await github.readFile("octo/app", pullRequest!.head, "NOTES.md")).toBe("# Notes\n");
    expect(outcome.stdout + outcome.stderr).not.toContain(token);
    await expectNothingLeft(outcome.tempDirectory);
  });

  it("works on a GitLab project in a subgroup with --gitlab-url: a draft merge request with labels, and the token never printed", async () => {
    const gitlab = await startGitLabServer({ relativeUrlRoot: "/gitlab" });
    cleanups.push(() => gitlab.close());
    const project = await gitlab.createProject({ path: "acme/platform/app", files: { "README.md": "# app\n" }, members: { "agent-bot": "developer" } });
    const token = gitlab.createPersonalAccessToken("agent-bot");
    const model = await modelServer([
      (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: `# Notes\n` } }] }),
      { text: "Added NOTES.md." },
    ]);
    const outcome = await runCli(
      ["run", "--repo", project.httpUrl, "--task", "Add a NOTES.md file", "--gitlab-url", gitlab.url, "--draft", "--label", "agent", "--title", "Add notes", "--unisolated", ...modelFlags(model.url)],
      { OPENAI_COMPATIBLE_API_KEY: MODEL_KEY, GITLAB_TOKEN: token },
    );
    cleanups.push(outcome.remove);
    expect(outcome.exitCode, describeOutcome(outcome)).toBe(0);
    const [mergeRequest] = gitlab.mergeRequests("acme/platform/app");
    expect(mergeRequest).toMatchObject({ title: "Draft: Add notes", draft: true, labels: ["agent"], targetBranch: "main", author: "agent-bot" });
    expect(outcome.stdout).toContain(`Pull request: ${gitlab.url}/acme/platform/app/-/merge_requests/${mergeRequest!.iid}`);
    expect(await gitlab.readFile("acme/platform/app", mergeRequest!.sourceBranch, "NOTES.md")).toBe("# Notes\n");
    expect(outcome.stdout + outcome.stderr).not.toContain(token);
    await expectNothingLeft(outcome.tempDirectory);
  });

  it.skipIf(!hasDockerImage)("runs the agent in a Docker container with --sandbox docker, and removes the container", async () => {
    const repo = await repository();
    const model = await modelServer([
      (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: "# Notes\n" } }] }),
      { text: "Added NOTES.md." },
    ]);
    const outcome = await runCli(
      ["run", "--repo", repo.path, "--task", "Add a NOTES.md file", "--sandbox", "docker", "--image", dockerImage, "--network", "host", "--json", ...modelFlags(model.url)],
      { OPENAI_COMPATIBLE_API_KEY: MODEL_KEY },
    );
    cleanups.push(outcome.remove);
    expect(outcome.exitCode, describeOutcome(outcome)).toBe(0);
    const result = JSON.parse(outcome.stdout) as { taskId: string; branch: string };
    expect(await repo.git("show", `${result.branch}:NOTES.md`)).toBe("# Notes\n");
    const sandboxEvent = outcome.stderr.split("\n").map((line) => JSON.parse(line || "{}") as { type?: string; provider?: string }).find((event) => event.type === "sandbox");
    expect(sandboxEvent).toMatchObject({ provider: "docker" });
    // The engine removes a stopped container (AutoRemove) a moment after it stops.
    const containersOfTask = () => execFileSync("docker", ["ps", "--all", "--quiet", "--filter", `label=running-agent.task-id=${result.taskId}`], { encoding: "utf8" }).trim();
    for (let attempt = 0; attempt < 50 && containersOfTask() !== ""; attempt++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(containersOfTask()).toBe("");
  });

  it("exits 2 when the agent changes nothing, with plain lines and no escape codes when piped", async () => {
    const repo = await repository();
    const model = await modelServer([{ text: "Everything is in order; nothing to change." }]);
    const outcome = await runCli(["run", "--repo", repo.path, "--task", "Tidy up if needed", ...modelFlags(model.url)], { OPENAI_COMPATIBLE_API_KEY: MODEL_KEY, TERM: "xterm-256color" });
    cleanups.push(outcome.remove);
    expect(outcome.exitCode, describeOutcome(outcome)).toBe(2);
    expect(outcome.stdout).toMatch(/^No changes: the agent finished without changing any file/);
    expect(outcome.stdout + outcome.stderr).not.toContain(ESCAPE);
    expect(outcome.stderr).not.toContain("\r");
    const lines = outcome.stderr.trimEnd().split("\n");
    for (const line of lines) expect(line).toMatch(/^\[ *\d+(\.\d)?s|^\[ *\d+m\d\ds\]/);
    expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/\] agent\.\.\.$/), expect.stringMatching(/\] agent: Everything is in order; nothing to change\.$/), expect.stringMatching(/\] skip: commit skipped$/)]));
    expect((await repo.git("branch", "--list")).trim()).toBe("* main");
    await expectNothingLeft(outcome.tempDirectory);
  });

  it("cancels on SIGINT: tears the sandbox down, exits 130, leaves no process behind", async () => {
    const repo = await repository();
    const model = await modelServer([{ hang: true }]);
    const cli = await startCli(["run", "--repo", repo.path, "--task", "Add a NOTES.md file", ...modelFlags(model.url)], { OPENAI_COMPATIBLE_API_KEY: MODEL_KEY });
    cleanups.push(cli.remove);
    // The agent is running once the model has been asked.
    await model.waitForChatRequests(1, { timeoutMs: 90_000 });
    // The sandbox's processes are found by the same check that must find none afterwards.
    expect(await processesUsing(cli.tempDirectory, cli.child.pid)).not.toEqual([]);
    cli.child.kill("SIGINT");
    const outcome = await cli.outcome;
    expect(outcome.exitCode, describeOutcome(outcome)).toBe(130);
    expect(outcome.stderr).toMatch(/SIGINT: cancelling/);
    expect(outcome.stderr).toMatch(/^Cancelled: ABORTED \(agent\)/m);
    expect(outcome.stderr).toMatch(/\] done: teardown/);
    expect((await repo.git("branch", "--list")).trim()).toBe("* main");
    await expectNothingLeft(cli.tempDirectory);
  });

  it.skipIf(!hasScript)("shows a live status line on a terminal and restores the cursor", async () => {
    const repo = await repository();
    const model = await modelServer([
      (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: "# Notes\n" } }] }),
      { text: "Added NOTES.md." },
    ]);
    const outcome = await runCliInTerminal(["run", "--repo", repo.path, "--task", "Add a NOTES.md file", ...modelFlags(model.url)], { OPENAI_COMPATIBLE_API_KEY: MODEL_KEY });
    cleanups.push(outcome.remove);
    expect(outcome.exitCode, describeOutcome(outcome)).toBe(0);
    const screen = outcome.stdout;
    expect(screen).toContain(`${ESCAPE}[?25l`); // cursor hidden while the status line spins
    expect(screen).toMatch(new RegExp(`${ESCAPE}\\[1G${ESCAPE}\\[0K`)); // the status line is redrawn in place
    expect(screen).toContain(`${ESCAPE}[1magent${ESCAPE}[22m`); // the phase, in bold, on the status line
    expect(screen).toMatch(/✔.* clone /);
    expect(screen).toMatch(/→ write NOTES\.md/);
    expect(screen).toMatch(/Pull request: local:\/\/.*\/change-requests\/1/);
    expect(screen.lastIndexOf(`${ESCAPE}[?25h`)).toBeGreaterThan(screen.lastIndexOf(`${ESCAPE}[?25l`)); // cursor shown again
    await expectNothingLeft(outcome.tempDirectory);
  });

  it.skipIf(!hasScript)("cancels on Ctrl+C typed into a terminal (SIGINT to the whole process group) and restores the cursor", async () => {
    const repo = await repository();
    const model = await modelServer([{ hang: true }]);
    const cli = await startCliInTerminal(["run", "--repo", repo.path, "--task", "Add a NOTES.md file", ...modelFlags(model.url)], { OPENAI_COMPATIBLE_API_KEY: MODEL_KEY });
    cleanups.push(cli.remove);
    await model.waitForChatRequests(1, { timeoutMs: 90_000 });
    cli.child.stdin!.write("\u0003");
    const outcome = await cli.outcome;
    expect(outcome.exitCode, describeOutcome(outcome)).toBe(130);
    expect(outcome.stdout).toMatch(/SIGINT: cancelling/);
    expect(outcome.stdout).toMatch(/✔.* teardown /);
    expect(outcome.stdout).toMatch(/Cancelled: ABORTED \(agent\)/);
    expect(outcome.stdout.lastIndexOf(`${ESCAPE}[?25h`)).toBeGreaterThan(outcome.stdout.lastIndexOf(`${ESCAPE}[?25l`));
    await expectNothingLeft(cli.tempDirectory);
  });
});
