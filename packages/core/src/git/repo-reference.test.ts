import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { RunningAgentError } from "../errors.js";
import { parseRepoReference } from "./repo-reference.js";

describe("parseRepoReference", () => {
  it("keeps a clean https URL and drops a trailing slash", () => {
    expect(parseRepoReference("https://git.example.test/owner/repo.git/")).toEqual({ kind: "http", url: "https://git.example.test/owner/repo.git", hadCredentials: false });
    expect(parseRepoReference("  http://127.0.0.1:8080/repo  ")).toEqual({ kind: "http", url: "http://127.0.0.1:8080/repo", hadCredentials: false });
  });

  it("strips credentials from an http(s) URL and says it did", () => {
    const reference = parseRepoReference("https://x-access-token:ghp_secret123@git.example.test/owner/repo.git");
    expect(reference).toEqual({ kind: "http", url: "https://git.example.test/owner/repo.git", hadCredentials: true });
    expect(JSON.stringify(reference)).not.toContain("ghp_secret123");
  });

  it("accepts absolute paths, ./ and ../ paths, and file:// URLs", () => {
    expect(parseRepoReference("/srv/repos/app.git")).toEqual({ kind: "local", path: "/srv/repos/app.git" });
    expect(parseRepoReference("./app")).toEqual({ kind: "local", path: resolve("app") });
    expect(parseRepoReference("../app")).toEqual({ kind: "local", path: resolve("..", "app") });
    expect(parseRepoReference("file:///srv/repos/my%20app.git")).toEqual({ kind: "local", path: "/srv/repos/my app.git" });
  });

  const rejected: Array<[string, RegExp]> = [
    ["", /empty/],
    ["   ", /empty/],
    ["ssh://git@git.example.test/owner/repo.git", /"ssh" scheme/],
    ["git@git.example.test:owner/repo.git", /SSH/],
    ["ftp://git.example.test/repo", /"ftp" scheme/],
    ["owner/repo", /neither a URL nor a path/],
    ["https://", /malformed|no host/],
    ["https://git.example.test/", /names no repository/],
    ["https://git.example.test/repo?token=abc", /query string/],
    ["/tmp/repo\nrm -rf /", /control character/],
    ["file://remote-host/repo", /malformed/],
  ];
  it.each(rejected)("rejects %j with INVALID_REPO", (repo, message) => {
    let caught: unknown;
    try {
      parseRepoReference(repo);
    } catch (error) {
      caught = error;
    }
    expect(RunningAgentError.isInstance(caught)).toBe(true);
    const error = caught as RunningAgentError;
    expect(error.code).toBe("INVALID_REPO");
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/https:\/\/.*file:\/\/.*local path/);
  });

  it("never echoes a secret from a malformed URL", () => {
    for (const repo of ["user:ghp_secret123@host:owner/repo", "https://user:ghp_secret123@[bad/repo", "ssh://user:ghp_secret123@host/repo"]) {
      expect(() => parseRepoReference(repo)).toThrow(RunningAgentError);
      expect(() => parseRepoReference(repo)).not.toThrow(/ghp_secret123/);
    }
  });
});
