import { spawn, type ChildProcess } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package folder: the CLI runs from its TypeScript source with tsx, core from source too. */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** A finished CLI process. */
export interface CliOutcome {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running CLI process with its own temp folder (TMPDIR), so that leftovers can be found. */
export interface CliProcess {
  child: ChildProcess;
  /** The TMPDIR the CLI (and every sandbox it makes) uses. */
  tempDirectory: string;
  /** Output so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when the process has exited and its streams are closed. */
  outcome: Promise<CliOutcome>;
  /** Removes the temp folder (after the process has exited). */
  remove(): Promise<void>;
}

/**
 * Starts `running-agent` as a child process with pipes for stdout and stderr (so it sees no
 * terminal), a fresh TMPDIR, and the environment given (on top of this process's, less
 * GITHUB_TOKEN and model keys).
 */
export async function startCli(args: string[], env: Record<string, string> = {}, packageRoot = PACKAGE_ROOT): Promise<CliProcess> {
  const tempDirectory = await mkdtemp(join(tmpdir(), "running-agent-cli-test-"));
  const baseEnv: Record<string, string | undefined> = { ...process.env };
  for (const name of ["GITHUB_TOKEN", "GEMINI_API_KEY", "GOOGLE_GENERATIVE_AI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_COMPATIBLE_API_KEY", "FORCE_COLOR"]) {
    delete baseEnv[name];
  }
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/bin.ts", ...args], {
    cwd: packageRoot,
    env: { ...baseEnv, TMPDIR: tempDirectory, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return follow(child, tempDirectory);
}

function follow(child: ChildProcess, tempDirectory: string): CliProcess {
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const outcome = new Promise<CliOutcome>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (exitCode, signal) => resolve({ exitCode, signal, stdout, stderr }));
  });
  return {
    child,
    tempDirectory,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    outcome,
    remove: () => rm(tempDirectory, { recursive: true, force: true }),
  };
}

/** Runs the CLI to the end. */
export async function runCli(args: string[], env: Record<string, string> = {}, packageRoot = PACKAGE_ROOT): Promise<CliOutcome & { tempDirectory: string; remove(): Promise<void> }> {
  const cli = await startCli(args, env, packageRoot);
  const outcome = await cli.outcome;
  return { ...outcome, tempDirectory: cli.tempDirectory, remove: cli.remove };
}

/**
 * Processes that still refer to a folder: in their command line, working directory or
 * environment. A sandbox's processes all do (bubblewrap binds the session folder, an
 * unisolated agent runs in it), so none may be left once the CLI has exited.
 */
export async function processesUsing(folder: string, exceptPid?: number): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid || Number(entry) === exceptPid) continue;
    const [commandLine, workingDirectory, environment] = await Promise.all([
      readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => ""),
      readlink(`/proc/${entry}/cwd`).catch(() => ""),
      readFile(`/proc/${entry}/environ`, "utf8").catch(() => ""),
    ]);
    if (commandLine.includes(folder) || workingDirectory.startsWith(folder) || environment.includes(folder)) {
      found.push(`${entry}: ${commandLine.replaceAll("\0", " ").slice(0, 200)}`);
    }
  }
  return found;
}

/**
 * Starts the CLI under a pseudo terminal made by util-linux's `script`, so that it sees a TTY
 * on stdout and stderr. Its stdout is everything the terminal received (both streams); writing
 * to `child.stdin` is typing (e.g. "\u0003" is Ctrl+C, a SIGINT to the whole foreground group).
 */
export async function startCliInTerminal(args: string[], env: Record<string, string> = {}): Promise<CliProcess> {
  const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, "--conditions=source", "--import", "tsx", "src/bin.ts", ...args].map(quote).join(" ");
  const tempDirectory = await mkdtemp(join(tmpdir(), "running-agent-cli-test-"));
  const child = spawn("script", ["--quiet", "--flush", "--return", "--command", command, "/dev/null"], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, TMPDIR: tempDirectory, TERM: "xterm-256color", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  return follow(child, tempDirectory);
}

/** Runs the CLI under a pseudo terminal to the end (see {@link startCliInTerminal}). */
export async function runCliInTerminal(args: string[], env: Record<string, string> = {}): Promise<CliOutcome & { tempDirectory: string; remove(): Promise<void> }> {
  const cli = await startCliInTerminal(args, env);
  const outcome = await cli.outcome;
  return { ...outcome, tempDirectory: cli.tempDirectory, remove: cli.remove };
}

/**
 * A copy of the CLI whose node_modules hold only its own dependencies and the core, none of
 * the optional adapters: what a user gets with `npm install @running-agent/cli` alone.
 * Returns the copy's folder; remove it when done.
 */
export async function installWithCoreOnly(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "running-agent-cli-core-only-"));
  await cp(join(PACKAGE_ROOT, "src"), join(root, "src"), { recursive: true });
  await cp(join(PACKAGE_ROOT, "package.json"), join(root, "package.json"));
  await mkdir(join(root, "node_modules", "@running-agent"), { recursive: true });
  for (const name of ["ora", "picocolors", "tsx", "@running-agent/core"]) {
    await symlink(await realpath(join(PACKAGE_ROOT, "node_modules", name)), join(root, "node_modules", name));
  }
  return root;
}
