// What clone, collect, commit and push cost against the same work done by hand with the git CLI,
// for 20, 2,000 and 20,000-file repositories over HTTP (git http-backend), and the memory a change
// costs against its bytes. Prints tables; the bench itself only runs them once. Collect and commit
// get a second floor, "by hand": the same primitives a person would run across the sandbox boundary
// from the same placed state (find -newer, tar out of the same bubblewrap sandbox, git add; git commit).
//   pnpm --filter @running-agent/core bench:collect
// RUNNING_AGENT_BENCH_SIZES=20,2000 picks sizes (empty: the memory table only); RUNNING_AGENT_BENCH_ISOLATION=none skips bubblewrap;
// RUNNING_AGENT_BENCH_MEMORY=0 skips the memory table, RUNNING_AGENT_BENCH_BEFORE=0 the old loop's rows (minutes at 20,000 files);
// RUNNING_AGENT_BENCH_ROUNDS=N runs N rounds of each (default 5, 3 at 20,000 files: more on a busy machine).
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { bench, describe } from "vitest";
import { packDirectory } from "../archive.js";
import { removeTree } from "../remove-tree.js";
import { bubblewrapArguments, findExecutable, probeBubblewrap, readSystemLayout, SANDBOX_WORKDIR } from "../sandbox-local/bubblewrap.js";
import { createLocalSandbox } from "../sandbox-local/local-sandbox.js";
import type { SandboxSession } from "../spec/sandbox-spec.js";
import { startGitHttpServer, type GitHttpServer } from "../testing/git-http-server.js";
import { cloneRepository } from "./clone.js";
import { collectChanges } from "./collect.js";
import { commitChanges } from "./commit.js";
import { createGitFixture, type GitFixture } from "./git-fixture.js";
import { runGit } from "./git-command.js";
import { placeRepository } from "./place.js";
import { pushBranch } from "./push.js";
import type { WorkspaceListing } from "./workspace-listing.js";

const TOKEN = "bench-token-0123456789";
const credentials = { username: "bench", password: TOKEN };
const author = { name: "Bench", email: "bench@example.test" };
const authHeader = `http.extraHeader=Authorization: Basic ${Buffer.from(`bench:${TOKEN}`).toString("base64")}`;
const sizes = (process.env.RUNNING_AGENT_BENCH_SIZES ?? "20,2000,20000").split(",").map(Number).filter((size) => size > 0);
const isolation = process.env.RUNNING_AGENT_BENCH_ISOLATION === "none" ? "none" : "bubblewrap";
const PHASES = ["clone", "collect", "commit", "push", "teardown"] as const;
type Phase = (typeof PHASES)[number];
type Timings = Record<Phase, number>;

const folders: string[] = [];
async function folder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "running-agent-bench-"));
  folders.push(dir);
  return dir;
}

async function timed(body: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await body();
  return performance.now() - started;
}

// About 2.5 KB of source-like text per file: 20,000 files make the issue's 50 MB.
function fileContent(index: number): string {
  let text = `// module ${index}\n`;
  for (let line = 0; text.length < 2_500; line++) text += `export const value${index}_${line} = "${((index * 7919 + line * 104729) % 1_000_003).toString(36)}";\n`;
  return text;
}

/** Appends a line to `count` files spread over the tree (the agent's change). */
function changeScript(fileCount: number, count: number, round: number): string {
  const step = Math.max(1, Math.floor(fileCount / count));
  const paths = Array.from({ length: Math.min(count, fileCount) }, (_, index) => `src/module-${(index * step) % 100}/file-${index * step}.ts`);
  return `for f in ${paths.join(" ")}; do echo "// round ${round}" >> "$f"; done`;
}

interface Setup {
  fixture: GitFixture;
  server: GitHttpServer;
  fileCount: number;
}

const repository = (setup: Setup) => ({ id: "bench", remote: `${setup.server.url}/repo.git`, defaultBranch: "main", canPush: true });

async function newSession(): Promise<SandboxSession> {
  return createLocalSandbox({ isolation }).create({ taskId: "bench" });
}

/** The loop as it is now: no host working tree, HEAD streamed in, only changed paths back. */
async function ours(setup: Setup, changed: number, round: number): Promise<Timings> {
  const session = await newSession();
  try {
    const dir = await folder();
    let placed: WorkspaceListing | undefined;
    const clone = await timed(async () => {
      await cloneRepository({ repository: repository(setup), branch: "main", depth: 1, credentials, dir, checkout: false });
      placed = await placeRepository({ session, dir });
    });
    await session.exec(["sh", "-ec", changeScript(setup.fileCount, changed, round)]);
    // As the loop calls it: nothing staged before the first collect.
    const collect = await timed(() => collectChanges({ session, dir, ...(placed ? { placed } : {}), staged: [], secrets: [TOKEN] }));
    const branch = `bench/ours-${round}`;
    const commit = await timed(() => commitChanges({ dir, branch, message: `Round ${round}\n`, author, stageWorkingTree: false }));
    const push = await timed(() => pushBranch({ dir, repository: repository(setup), branch, credentials }));
    // As the loop's teardown: the sandbox (its processes and folders) beside the host clone.
    const teardown = await timed(() => Promise.all([session.destroy(), removeTree(dir)]));
    return { clone, collect, commit, push, teardown };
  } finally {
    await session.destroy();
  }
}

/** The loop as it was: a host checkout packed in memory, the whole tree back, the host tree rewritten. */
async function before(setup: Setup, changed: number, round: number): Promise<Timings> {
  const session = await newSession();
  try {
    const dir = await folder();
    const clone = await timed(async () => {
      await cloneRepository({ repository: repository(setup), branch: "main", depth: 1, credentials, dir });
      await session.putArchive(session.workdir, await packDirectory(dir));
    });
    await session.exec(["sh", "-ec", changeScript(setup.fileCount, changed, round)]);
    const collect = await timed(() => collectChanges({ session, dir, secrets: [TOKEN] }));
    const branch = `bench/before-${round}`;
    const commit = await timed(() => commitChanges({ dir, branch, message: `Round ${round}\n`, author }));
    const push = await timed(() => pushBranch({ dir, repository: repository(setup), branch, credentials }));
    // As the loop's teardown: the sandbox (its processes and folders) and the host clone.
    const teardown = await timed(async () => {
      await session.destroy();
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    });
    return { clone, collect, commit, push, teardown };
  } finally {
    await session.destroy();
  }
}

/** The floor: the git CLI by hand, cloning straight into the folder the agent would work in. */
async function floor(setup: Setup, changed: number, round: number): Promise<Timings> {
  const dir = await folder();
  const url = repository(setup).remote;
  const git = (args: string[], cwd?: string) => runGit(args, { ...(cwd ? { cwd } : {}), env: { GIT_AUTHOR_NAME: "Bench", GIT_AUTHOR_EMAIL: "b@e.t", GIT_COMMITTER_NAME: "Bench", GIT_COMMITTER_EMAIL: "b@e.t" } });
  const clone = await timed(() => git(["-c", authHeader, "clone", "--quiet", "--depth=1", "--single-branch", "--no-tags", "--branch=main", "--", url, dir]));
  // A refreshed index (outside the timing) spares git add the racy re-hash right after a clone: a low floor.
  await runGit(["status", "--porcelain"], { cwd: dir });
  const { spawn } = await import("node:child_process");
  await new Promise<void>((resolve, reject) => spawn("sh", ["-ec", changeScript(setup.fileCount, changed, round)], { cwd: dir, stdio: "ignore" }).once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`change exited ${code}`)))));
  const collect = await timed(() => git(["add", "--all"], dir));
  const commit = await timed(() => git(["-c", "core.hooksPath=/dev/null", "commit", "--quiet", "--no-verify", "-m", `Round ${round}`], dir));
  const push = await timed(() => git(["-c", authHeader, "push", "--quiet", url, `HEAD:refs/heads/bench/floor-${round}`], dir));
  const teardown = await timed(() => new Promise<void>((resolve, reject) => spawn("rm", ["-rf", "--", dir], { stdio: "ignore" }).once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`rm exited ${code}`))))));
  return { clone, collect, commit, push, teardown };
}

/** Runs `script` with `sh -ec` (arguments as $1...), stdin `input`; resolves with stdout. */
function shell(script: string, args: readonly string[] = [], input = ""): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-ec", script, "sh", ...args], { stdio: ["pipe", "pipe", "inherit"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" } });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.once("exit", (code) => (code === 0 ? resolve(Buffer.concat(chunks).toString("utf8")) : reject(new Error(`sh exited ${code}: ${script}`))));
    // A script that reads no input closes its stdin early.
    child.stdin.on("error", () => undefined);
    child.stdin.end(input);
  });
}

/** The bwrap command line the local sandbox runs a command with (no network policy), for the session whose workspace is `workspace`. */
async function bubblewrapCommand(workspace: string): Promise<string[]> {
  if (isolation === "none") return [];
  const path = findExecutable("bwrap")!;
  const root = dirname(workspace);
  const mounts = { system: readSystemLayout(), hostWorkspace: workspace, hostScratch: join(root, "scratch"), hostPasswd: join(root, "system", "passwd"), hostGroup: join(root, "system", "group") };
  return [path, ...bubblewrapArguments({ ...mounts, cwd: SANDBOX_WORKDIR, disableUserns: (await probeBubblewrap(path)).disableUserns }), "--"];
}

/**
 * The same primitives as ours, run by hand across the sandbox boundary from the same placed state
 * (a host clone without working tree, the files in the sandbox): one find of what is newer than a
 * mark made before the change, one tar of those paths out of the same bubblewrap sandbox into the
 * host clone, one git add of them; then git commit.
 */
async function byHand(setup: Setup, changed: number, round: number): Promise<{ collect: number; commit: number }> {
  const session = await newSession();
  try {
    const dir = await folder();
    await cloneRepository({ repository: { ...repository(setup), remote: setup.fixture.barePath }, branch: "main", depth: 1, dir, checkout: false });
    await placeRepository({ session, dir });
    const workspace = await session.hostFolder!(session.workdir);
    const mark = join(dir, ".git", "bench-mark");
    await writeFile(mark, "");
    // find -newer compares with the mark's mtime: a change within the same clock tick would not be newer.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await session.exec(["sh", "-ec", changeScript(setup.fileCount, changed, round)]);
    const tarOut = [...(await bubblewrapCommand(workspace)), "tar", "-c", "-f", "-", "--null", "--no-recursion", "-C", isolation === "none" ? workspace : SANDBOX_WORKDIR, "-T", "-"];
    const collect = await timed(async () => {
      const paths = await shell('cd "$1" && find . -name .git -prune -o -newer "$2" \\( -type f -o -type l \\) -printf "%P\\0"', [workspace, mark]);
      await shell('dir=$1; shift; "$@" | tar -x -f - -C "$dir"', [dir, ...tarOut], paths);
      await runGit(["add", "--pathspec-from-file=-", "--pathspec-file-nul"], { cwd: dir, input: paths });
    });
    const commit = await timed(() => runGit(["-c", "core.hooksPath=/dev/null", "commit", "--quiet", "--no-verify", "-m", `Round ${round}`], { cwd: dir, env: { GIT_AUTHOR_NAME: "Bench", GIT_AUTHOR_EMAIL: "b@e.t", GIT_COMMITTER_NAME: "Bench", GIT_COMMITTER_EMAIL: "b@e.t" } }));
    return { collect, commit };
  } finally {
    await session.destroy();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function summarize(runs: Timings[]): Timings {
  return Object.fromEntries(PHASES.map((phase) => [phase, median(runs.map((run) => run[phase]))])) as Timings;
}

const ms = (value: number) => `${value.toFixed(0).padStart(6)} ms`;
const ratio = (value: number, base: number) => `${(value / base).toFixed(2).padStart(6)}x`;

async function makeSetup(fileCount: number): Promise<Setup> {
  const fixture = await createGitFixture({
    files: { ".gitignore": "build/\n" },
    generated: { count: fileCount, file: (index) => [`src/module-${index % 100}/file-${index}.ts`, fileContent(index)] },
    bare: true,
  });
  const server = await startGitHttpServer({ root: fixture.root, token: TOKEN });
  return { fixture, server, fileCount };
}

async function timeTable(): Promise<void> {
  console.log(`clone (+ place), collect, commit, push over http, teardown (ours: the sandbox and the host clone; floor: rm -rf of the clone); medians; local sandbox (${isolation}); floor = git CLI by hand in the same run`);
  console.log(`* by hand: the same primitives across the sandbox boundary, from the same placed state: find -newer, tar out of the same ${isolation === "none" ? "(unisolated) session" : "bubblewrap sandbox"} into the host clone, git add of those paths; git commit`);
  for (const fileCount of sizes) {
    const lines: string[] = [];
    const setup = await makeSetup(fileCount);
    try {
      for (const changed of fileCount >= 2000 ? [1, 500] : [5]) {
        const rounds = Number(process.env.RUNNING_AGENT_BENCH_ROUNDS ?? 0) || (fileCount >= 20_000 ? 3 : 5);
        const runs = { ours: [] as Timings[], before: [] as Timings[], floor: [] as Timings[], byHand: [] as Array<{ collect: number; commit: number }> };
        let round = changed * 1000;
        // Alternating, so that the machine's load falls on every side alike.
        for (let index = 0; index < rounds; index++) {
          runs.floor.push(await floor(setup, changed, ++round));
          runs.ours.push(await ours(setup, changed, ++round));
          runs.byHand.push(await byHand(setup, changed, ++round));
          if (index < (fileCount >= 20_000 ? 1 : 3) && process.env.RUNNING_AGENT_BENCH_BEFORE !== "0") runs.before.push(await before(setup, changed, ++round));
        }
        const [o, f] = [summarize(runs.ours), summarize(runs.floor)];
        const b = runs.before.length > 0 ? summarize(runs.before) : undefined;
        lines.push("", `${fileCount} files, ${changed} changed      floor      ours   ours/floor    before  before/floor`);
        for (const phase of PHASES) lines.push(`  ${phase.padEnd(22)} ${ms(f[phase])} ${ms(o[phase])}  ${ratio(o[phase], f[phase])}   ${b ? `${ms(b[phase])}  ${ratio(b[phase], f[phase])}` : "     -"}`);
        // The second floor: the same primitives by hand across the sandbox boundary, from the same placed state.
        const hand = { collect: median(runs.byHand.map((run) => run.collect)), commit: median(runs.byHand.map((run) => run.commit)) };
        for (const phase of ["collect", "commit"] as const) lines.push(`  ${`${phase}, by hand*`.padEnd(22)} ${ms(hand[phase])} ${ms(o[phase])}  ${ratio(o[phase], hand[phase])}`);
      }
    } finally {
      await setup.server.close();
      await setup.fixture.cleanup();
      for (const dir of folders.splice(0)) await rm(dir, { recursive: true, force: true });
    }
    console.log(lines.join("\n"));
  }
}

/** Resident memory of git processes, in bytes: all of them, and the processes that held the most of each kind. */
interface GitMemory {
  anon: number;
  file: number;
  mostAnon?: { command: string; bytes: number };
  mostFile?: { command: string; bytes: number };
}

/**
 * Resident memory of this process's git descendants (a push's remote helper and pack-objects, a
 * clone's index-pack; not the test server's git http-backend), from /proc/PID/status.
 * Anonymous is what git allocated; file-backed is pages of files it mapped (git mmaps pack files and
 * copies reused objects out of those windows), which /proc/PID/stat's rss counts too but which the
 * kernel can drop and share: it is the page cache, not git's allocation.
 */
function gitDescendantsMemory(): GitMemory {
  const processes = new Map<number, { parent: number; command: string; anon: number; file: number }>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      let command = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (command.startsWith("git")) {
        // The server's `git http-backend` is named git too: told apart by its arguments; `git` alone is named by its subcommand.
        const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
        let subcommand = 1;
        while (argv[subcommand] === "-c") subcommand += 2;
        command = argv.includes("http-backend") ? "git-http-backend" : command === "git" && argv[subcommand] ? `git ${argv[subcommand]}` : command;
      }
      const status = readFileSync(`/proc/${name}/status`, "utf8");
      const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0) * 1024;
      processes.set(Number(name), { parent: Number(fields[1]), command, anon: kib("RssAnon"), file: kib("RssFile") + kib("RssShmem") });
    } catch {
      // Gone meanwhile.
    }
  }
  const total: GitMemory = { anon: 0, file: 0 };
  for (const [pid, entry] of processes) {
    if (!entry.command.startsWith("git")) continue;
    for (let at = pid; at > 1; ) {
      const current = processes.get(at);
      if (!current || current.command.startsWith("git-http-back")) break;
      if (current.parent === process.pid) {
        total.anon += entry.anon;
        total.file += entry.file;
        if (entry.anon > (total.mostAnon?.bytes ?? -1)) total.mostAnon = { command: entry.command, bytes: entry.anon };
        if (entry.file > (total.mostFile?.bytes ?? -1)) total.mostFile = { command: entry.command, bytes: entry.file };
        break;
      }
      at = current.parent;
    }
  }
  return total;
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(0).padStart(4)} MiB`;

/** Peaks, sampled every 10 ms from the call on: this process's RSS and heap above their start, git's processes as they are. */
class MemoryPeaks {
  rss = 0;
  heap = 0;
  gitAnon = 0;
  gitFile = 0;
  mostAnon: GitMemory["mostAnon"];
  mostFile: GitMemory["mostFile"];
  readonly #start: NodeJS.MemoryUsage;
  readonly #timer: NodeJS.Timeout;

  constructor() {
    global.gc?.();
    this.#start = process.memoryUsage();
    this.#timer = setInterval(() => this.sample(), 10);
  }

  sample(): void {
    const now = process.memoryUsage();
    const start = this.#start;
    this.rss = Math.max(this.rss, now.rss - start.rss);
    this.heap = Math.max(this.heap, now.heapUsed + now.external + now.arrayBuffers - start.heapUsed - start.external - start.arrayBuffers);
    const git = gitDescendantsMemory();
    this.gitAnon = Math.max(this.gitAnon, git.anon);
    this.gitFile = Math.max(this.gitFile, git.file);
    if (git.mostAnon && git.mostAnon.bytes >= (this.mostAnon?.bytes ?? 0)) this.mostAnon = git.mostAnon;
    if (git.mostFile && git.mostFile.bytes >= (this.mostFile?.bytes ?? 0)) this.mostFile = git.mostFile;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.sample();
  }

  /** This process's and git's figures, as printed. */
  describe(): string {
    const most = (entry: GitMemory["mostAnon"]) => (entry ? ` (most: ${entry.command}, ${mib(entry.bytes).trim()})` : "");
    return `RSS +${mib(this.rss)} (heap+buffers +${mib(this.heap)}), git processes ${mib(this.gitAnon)} anonymous${most(this.mostAnon)} + ${mib(this.gitFile)} file-backed${most(this.mostFile)}`;
  }
}

/** Peaks above the start of collect (this process's RSS, heap and buffers) and of git's processes, while `change` is collected, committed and pushed. */
async function memoryOf(setup: Setup, change: { label: string; script: string; bytes: number }, path: "ours" | "before", round: number): Promise<void> {
  const session = await newSession();
  try {
    const dir = await folder();
    let placed: WorkspaceListing | undefined;
    if (path === "ours") {
      await cloneRepository({ repository: repository(setup), branch: "main", depth: 1, credentials, dir, checkout: false });
      placed = await placeRepository({ session, dir });
    } else {
      await cloneRepository({ repository: repository(setup), branch: "main", depth: 1, credentials, dir });
      await session.putArchive(session.workdir, await packDirectory(dir));
    }
    await session.exec(["sh", "-ec", change.script]);
    const peak = new MemoryPeaks();
    try {
      const limits = { maxFileBytes: 2 * change.bytes + 1_000_000, maxTotalBytes: 2 * change.bytes + 1_000_000 };
      await collectChanges({ session, dir, ...(placed ? { placed } : {}), limits, secrets: [TOKEN] });
      const branch = `bench/memory-${path}-${round}`;
      await commitChanges({ dir, branch, message: "Memory\n", author, ...(path === "ours" ? { stageWorkingTree: false } : {}) });
      peak.sample();
      const collectCommit = peak.describe();
      await pushBranch({ dir, repository: repository(setup), branch, credentials });
      peak.stop();
      console.log(`  ${path.padEnd(6)} ${change.label.padEnd(26)} collect+commit: ${collectCommit}\n  ${"".padEnd(33)} with push:      ${peak.describe()}`);
    } finally {
      peak.stop();
    }
  } finally {
    await session.destroy();
  }
}

/** Peaks while a repository is cloned on the host (no working tree) and placed in a sandbox, and while git clones it by hand from the same in-process server. */
async function cloneMemoryOf(setup: Setup): Promise<void> {
  const byHand = new MemoryPeaks();
  try {
    await runGit(["-c", authHeader, "clone", "--quiet", "--depth=1", "--single-branch", "--no-tags", "--branch=main", "--no-checkout", "--", repository(setup).remote, await folder()]);
  } finally {
    byHand.stop();
  }
  console.log(`  ${`${setup.fileCount} files`.padEnd(12)} by hand: ${byHand.describe()}`);
  const session = await newSession();
  try {
    const dir = await folder();
    const peak = new MemoryPeaks();
    try {
      await cloneRepository({ repository: repository(setup), branch: "main", depth: 1, credentials, dir, checkout: false });
      peak.sample();
      const clone = peak.describe();
      await placeRepository({ session, dir });
      peak.stop();
      console.log(`  ${"".padEnd(12)} clone:   ${clone}\n  ${"".padEnd(12)} + place: ${peak.describe()}`);
    } finally {
      peak.stop();
    }
  } finally {
    await session.destroy();
  }
}

async function memoryTable(): Promise<void> {
  const fileCount = Number(process.env.RUNNING_AGENT_BENCH_MEMORY_FILES ?? 20_000);
  console.log(`\nmemory against the changed bytes, ${fileCount}-file repository: peaks above the start of collect (this process) and of the git processes it runs; this process includes the test's git HTTP server, which runs in it and relays each request and answer (streamed)`);
  console.log(`git processes: anonymous is what git allocated; file-backed is pages of the pack and object files git maps (page cache the kernel can drop), which /proc's plain rss adds in`);
  const setup = await makeSetup(fileCount);
  try {
    console.log(`clone over http (depth 1, no working tree) and place, peaks above the start; by hand = git clone from the same server, which runs in this process and relays the pack through it; a 20-file repository for comparison`);
    const small = await makeSetup(20);
    try {
      await cloneMemoryOf(small);
    } finally {
      await small.server.close();
      await small.fixture.cleanup();
    }
    await cloneMemoryOf(setup);
    console.log(`collect, commit, push`);
    let round = 0;
    const changes = [
      { label: "500 files (about 1.3 MB)", script: changeScript(fileCount, 500, 1), bytes: 500 * 2_600 },
      ...[64, 256].map((size) => ({ label: `one ${size} MiB file`, script: `head -c ${size * 1048576} /dev/urandom > large.bin`, bytes: size * 1048576 })),
    ];
    for (const change of changes) {
      await memoryOf(setup, change, "ours", ++round);
      if (process.env.RUNNING_AGENT_BENCH_BEFORE !== "0") await memoryOf(setup, change, "before", ++round);
    }
  } finally {
    await setup.server.close();
    await setup.fixture.cleanup();
    for (const dir of folders.splice(0)) await rm(dir, { recursive: true, force: true });
  }
}

describe("collect cost against the git CLI", () => {
  bench(
    "clone, collect, commit, push: ours, before and the git CLI floor (tables printed above)",
    async () => {
      await timeTable();
      if (process.env.RUNNING_AGENT_BENCH_MEMORY !== "0") await memoryTable();
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
