import { lstat, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { CheckSpec } from "./check-types.js";

/** What {@link detectChecks} found, and why. */
export interface DetectedChecks {
  /** The checks found, empty when none. */
  checks: CheckSpec[];
  /** One line per choice, for the event that says what was chosen. */
  reasons: string[];
}

const PACKAGE_SCRIPTS = ["typecheck", "lint", "test"] as const;
// npm init's placeholder test script fails on purpose; it is no test.
const NPM_PLACEHOLDER = /no test specified/;

/**
 * The usual checks of a repository, read from its files on the host (never run here): package.json
 * `typecheck`/`lint`/`test` scripts with the package manager its lockfile names, pytest, `go test`,
 * `cargo test`, a Makefile `test` target. Untrusted files are only read and parsed; the commands
 * run in the sandbox. Returns no checks when nothing is detected.
 */
export async function detectChecks(dir: string): Promise<DetectedChecks> {
  const checks: CheckSpec[] = [];
  const reasons: string[] = [];
  const add = (name: string, command: string, reason: string) => {
    if (checks.some((check) => check.name === name)) return;
    checks.push({ name, command });
    reasons.push(`${name}: \`${command}\` (${reason})`);
  };

  const packageJson = await readSmallFile(join(dir, "package.json"));
  if (packageJson !== undefined) {
    const scripts = scriptsOf(packageJson);
    const manager = await packageManagerOf(dir);
    for (const script of PACKAGE_SCRIPTS) {
      const body = scripts[script];
      if (typeof body !== "string" || body.trim() === "" || (script === "test" && NPM_PLACEHOLDER.test(body))) continue;
      // `bun test` is bun's own runner, not the script; the others run the script for `test`.
      const command = script === "test" && manager.name !== "bun" ? `${manager.name} test` : `${manager.name} run ${script}`;
      add(script, command, `package.json script, ${manager.reason}`);
    }
  }
  if (await hasPytest(dir)) add("pytest", "pytest", "pytest configuration found");
  if (await exists(join(dir, "go.mod"))) add("go-test", "go test ./...", "go.mod");
  if (await exists(join(dir, "Cargo.toml"))) add("cargo-test", "cargo test", "Cargo.toml");
  const makefile = (await readSmallFile(join(dir, "Makefile"))) ?? (await readSmallFile(join(dir, "makefile")));
  if (makefile !== undefined && /^test\s*:/m.test(makefile) && !checks.some((check) => check.name === "test")) add("make-test", "make test", "Makefile has a test target");
  return { checks, reasons };
}

function scriptsOf(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    const scripts = typeof parsed === "object" && parsed !== null ? (parsed as { scripts?: unknown }).scripts : undefined;
    return typeof scripts === "object" && scripts !== null && !Array.isArray(scripts) ? (scripts as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

async function packageManagerOf(dir: string): Promise<{ name: "npm" | "pnpm" | "yarn" | "bun"; reason: string }> {
  for (const [file, name] of [
    ["pnpm-lock.yaml", "pnpm"],
    ["yarn.lock", "yarn"],
    ["bun.lock", "bun"],
    ["bun.lockb", "bun"],
    ["package-lock.json", "npm"],
  ] as const) {
    if (await exists(join(dir, file))) return { name, reason: `${file} names ${name}` };
  }
  return { name: "npm", reason: "no lockfile: npm" };
}

async function hasPytest(dir: string): Promise<boolean> {
  if ((await exists(join(dir, "pytest.ini"))) || (await exists(join(dir, "conftest.py")))) return true;
  const sections: Array<[string, RegExp]> = [
    ["pyproject.toml", /^\[tool\.pytest/m],
    ["setup.cfg", /^\[tool:pytest\]/m],
    ["tox.ini", /^\[pytest\]/m],
  ];
  for (const [file, pattern] of sections) {
    const text = await readSmallFile(join(dir, file));
    if (text !== undefined && pattern.test(text)) return true;
  }
  return false;
}

const MAX_CONFIG_BYTES = 1024 * 1024;

// A regular file of reasonable size, read as text; anything else (missing, a folder, huge, or a
// symlink, which could point out of the clone into the host) is absent.
async function readSmallFile(path: string): Promise<string | undefined> {
  const stats = await lstat(path).catch(() => undefined);
  if (!stats?.isFile() || stats.size > MAX_CONFIG_BYTES) return undefined;
  return readFile(path, "utf8").catch(() => undefined);
}

async function exists(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined))?.isFile() === true;
}
