import { agentError, ErrorCode } from "../errors.js";

/** Options for {@link makeBranchName}. */
export interface BranchNameOptions {
  /** Put before the slug, e.g. `running-agent/`. Default `running-agent/`. */
  prefix?: string;
  /** Makes the name unique, e.g. a short task id. */
  suffix: string;
}

const MAX_SLUG_LENGTH = 40;
// refs/heads/ plus the name stays within the 255 bytes most hosts and file systems accept.
const MAX_BRANCH_BYTES = 244;

/**
 * A branch name for a task: `<prefix><slug of the task>-<suffix>`. The slug keeps ASCII letters
 * and digits (accents are folded, everything else becomes `-`), so the result is valid for
 * `git check-ref-format --branch` whatever the task says. Throws INVALID_BRANCH when the prefix
 * or suffix makes it invalid.
 */
export function makeBranchName(task: string, options: BranchNameOptions): string {
  const prefix = options.prefix ?? "running-agent/";
  const suffix = slugify(options.suffix, 24);
  if (suffix === "") throw agentError(ErrorCode.INVALID_BRANCH, `The branch suffix ${JSON.stringify(options.suffix)} has no letters or digits.`);
  const slug = slugify(task, MAX_SLUG_LENGTH) || "task";
  const name = `${prefix}${slug}-${suffix}`;
  validateBranchName(name);
  return name;
}

function slugify(text: string, maxLength: number): string {
  const folded = text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  if (folded.length <= maxLength) return folded;
  // Cut at a word boundary when one is near, so that slugs read well.
  const cut = folded.slice(0, maxLength);
  const lastDash = cut.lastIndexOf("-");
  return (lastDash >= maxLength / 2 ? cut.slice(0, lastDash) : cut).replace(/-+$/, "");
}

/**
 * Throws INVALID_BRANCH unless `name` is a valid branch name by the rules of
 * `git check-ref-format --branch` (no `..`, `@{`, control characters, spaces, `~^:?*[\`,
 * no component starting with `.` or ending with `.lock`, no leading `-`, ...).
 */
export function validateBranchName(name: string): void {
  const reason = branchNameProblem(name);
  if (reason) {
    throw agentError(ErrorCode.INVALID_BRANCH, `${JSON.stringify(name)} is not a valid branch name: ${reason}.`, { details: { branch: name } });
  }
}

function branchNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string" || name === "") return "it is empty";
  if (Buffer.byteLength(name) > MAX_BRANCH_BYTES) return `it is longer than ${MAX_BRANCH_BYTES} bytes`;
  if (name === "HEAD" || name === "@") return "it is reserved";
  if (name.startsWith("-")) return "it starts with '-'";
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) return "it contains a space, a control character or one of ~ ^ : ? * [ \\";
  if (name.includes("..")) return "it contains '..'";
  if (name.includes("@{")) return "it contains '@{'";
  if (name.startsWith("/") || name.endsWith("/") || name.includes("//")) return "it has an empty path component";
  if (name.endsWith(".")) return "it ends with '.'";
  for (const component of name.split("/")) {
    if (component.startsWith(".")) return "a component starts with '.'";
    if (component.endsWith(".lock")) return "a component ends with '.lock'";
  }
  return undefined;
}
