import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { RunningAgentError } from "../errors.js";
import { makeBranchName, validateBranchName } from "./branch-name.js";

// git itself is the oracle for what a valid branch name is.
function gitAccepts(name: string): boolean {
  try {
    execFileSync("git", ["check-ref-format", `refs/heads/${name}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function ourAccepts(name: string): boolean {
  try {
    validateBranchName(name);
    return true;
  } catch (error) {
    expect(RunningAgentError.isInstance(error) && error.code).toBe("INVALID_BRANCH");
    return false;
  }
}

const awkwardTasks = [
  "Add unit tests for the utils module",
  "Fix the bug in src/../etc/passwd handling",
  "Rename foo.lock to bar.lock",
  "Ünïcödé: résumé naïve façade",
  "修复登录页面的错误",
  "🚀 launch 🚀 the rocket 🎉",
  "....",
  "refs/heads/main",
  "-rf --force HEAD@{1} ~^:?*[\\",
  "a".repeat(5000),
  "x/y//z/",
  "",
  "   ",
  "release.lock",
  "@",
];

describe("makeBranchName", () => {
  it.each(awkwardTasks)("gives a name git accepts for %j", (task) => {
    const name = makeBranchName(task, { suffix: "a1b2c3d4" });
    expect(gitAccepts(name)).toBe(true);
    expect(name.startsWith("running-agent/")).toBe(true);
    expect(name.endsWith("-a1b2c3d4")).toBe(true);
    expect(name.length).toBeLessThanOrEqual(80);
  });

  it("reads like the task and folds accents", () => {
    expect(makeBranchName("Add unit tests for the utils module", { suffix: "abc", prefix: "bot/" })).toBe("bot/add-unit-tests-for-the-utils-module-abc");
    expect(makeBranchName("Résumé façade", { suffix: "1" })).toBe("running-agent/resume-facade-1");
    expect(makeBranchName("🚀", { suffix: "1" })).toBe("running-agent/task-1");
  });

  it("differs by suffix for the same task", () => {
    expect(makeBranchName("same", { suffix: "one" })).not.toBe(makeBranchName("same", { suffix: "two" }));
  });

  it("rejects a prefix or suffix that cannot make a valid name", () => {
    expect(() => makeBranchName("task", { suffix: "🚀" })).toThrow(/suffix/);
    expect(() => makeBranchName("task", { suffix: "x", prefix: "bad..prefix/" })).toThrow(RunningAgentError);
    expect(() => makeBranchName("task", { suffix: "x", prefix: ".hidden/" })).toThrow(/not a valid branch name/);
  });
});

describe("validateBranchName", () => {
  const names = [
    "main",
    "feature/x",
    "running-agent/add-tests-1",
    "é-ü",
    "a..b",
    "a/.b",
    ".a",
    "a.lock",
    "a/b.lock/c",
    "a@{b",
    "a//b",
    "/a",
    "a/",
    "a.",
    "a b",
    "a\tb",
    "a~b",
    "a^b",
    "a:b",
    "a?b",
    "a*b",
    "a[b",
    "a\\b",
    "a\u007fb",
  ];
  it.each(names)("agrees with git check-ref-format on %j", (name) => {
    expect(ourAccepts(name)).toBe(gitAccepts(name));
  });

  it("rejects what git allows but a branch must not be", () => {
    for (const name of ["", "-x", "HEAD", "@", "a".repeat(300)]) expect(ourAccepts(name)).toBe(false);
  });

  it("says what is wrong", () => {
    expect(() => validateBranchName("a..b")).toThrow(/'\.\.'/);
  });
});
