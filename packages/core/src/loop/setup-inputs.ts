import { agentError, ErrorCode } from "../errors.js";
import { invalidOption } from "./option-checks.js";

/**
 * Files whose change makes a prepared state stale, at any depth: dependency manifests, lockfiles and
 * the version files installers read. A task whose base moved since its prepared state starts from
 * that state only when none of these (nor the caller's `setupInputs`) changed in between.
 */
export const DEFAULT_SETUP_INPUT_NAMES = [
  // JavaScript
  "package.json", "package-lock.json", "npm-shrinkwrap.json", ".npmrc", "pnpm-lock.yaml", "pnpm-workspace.yaml", ".pnpmfile.cjs",
  "yarn.lock", ".yarnrc", ".yarnrc.yml", "bun.lock", "bun.lockb", "bunfig.toml", "deno.json", "deno.jsonc", "deno.lock",
  ".nvmrc", ".node-version",
  // Python
  "requirements*.txt", "constraints*.txt", "pyproject.toml", "poetry.lock", "uv.lock", "Pipfile", "Pipfile.lock", "setup.py", "setup.cfg", ".python-version",
  // Rust, Go, Ruby, PHP
  "Cargo.toml", "Cargo.lock", "rust-toolchain", "rust-toolchain.toml", "go.mod", "go.sum", "go.work", "go.work.sum",
  "Gemfile", "Gemfile.lock", "*.gemspec", ".ruby-version", "composer.json", "composer.lock",
  // JVM, .NET, Elixir, Dart, Swift, Nix, asdf
  "pom.xml", "build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts", "gradle.lockfile", "packages.lock.json", "*.csproj",
  "mix.exs", "mix.lock", "pubspec.yaml", "pubspec.lock", "Package.swift", "Package.resolved", "flake.nix", "flake.lock", ".tool-versions",
] as const;

/** {@link DEFAULT_SETUP_INPUT_NAMES} as git pathspecs that match at any depth. */
export const DEFAULT_SETUP_INPUTS: readonly string[] = DEFAULT_SETUP_INPUT_NAMES.map((name) => `:(glob)**/${name}`);

const MAX_SETUP_INPUTS = 200;
const MAX_PATHSPEC_LENGTH = 1_000;
// Pathspec magic that only selects paths; `attr` (reads attributes) and `prefix` are left out.
const MAGIC_WORDS = new Set(["top", "literal", "glob", "icase", "exclude"]);

/**
 * Checks the caller's `setupInputs`: git pathspecs (relative to the repository's root) of more files
 * whose change makes a prepared state stale, e.g. `scripts/install.sh`, `:(glob)tools/**\/*.lock`.
 * Bad ones fail with INVALID_OPTIONS before anything is created.
 */
export function checkSetupInputs(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalidOption("setupInputs", "an array of git pathspecs", value);
  if (value.length > MAX_SETUP_INPUTS) throw agentError(ErrorCode.INVALID_OPTIONS, `setupInputs has ${value.length} pathspecs; the limit is ${MAX_SETUP_INPUTS}.`, { phase: "validate", details: { option: "setupInputs" } });
  return value.map((pathspec, index) => checkPathspec(`setupInputs[${index}]`, pathspec));
}

function checkPathspec(name: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") throw invalidOption(name, "a non-empty git pathspec", value);
  const refuse = (why: string) => agentError(ErrorCode.INVALID_OPTIONS, `${name} (${JSON.stringify(value.slice(0, 80))}) ${why}.`, { phase: "validate", details: { option: "setupInputs" } });
  if (value.length > MAX_PATHSPEC_LENGTH) throw refuse(`is longer than ${MAX_PATHSPEC_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw refuse("contains a control character");
  let pattern = value;
  if (value.startsWith(":(")) {
    const end = value.indexOf(")");
    if (end < 0) throw refuse("opens pathspec magic with \":(\" and never closes it");
    const words = value.slice(2, end).split(",").map((word) => word.trim());
    const unknown = words.find((word) => !MAGIC_WORDS.has(word));
    if (unknown !== undefined) throw refuse(`uses the pathspec magic "${unknown}"; only ${[...MAGIC_WORDS].join(", ")} are taken`);
    if (words.includes("literal") && words.includes("glob")) throw refuse("asks for both literal and glob matching");
    pattern = value.slice(end + 1);
  } else if (value.startsWith(":")) {
    // The short forms: `:!` / `:^` (exclude), `:/` (from the top).
    const short = /^:([!^/]*)(:?)/.exec(value)!;
    if (short[1] === "" && short[2] === "") throw refuse('uses short pathspec magic other than ":!", ":^" and ":/"');
    pattern = value.slice(short[0].length);
  }
  if (pattern.startsWith("/")) throw refuse("is an absolute path; pathspecs are relative to the repository's root");
  if (pattern.split("/").includes("..")) throw refuse('climbs out of the repository with ".."');
  return value;
}
