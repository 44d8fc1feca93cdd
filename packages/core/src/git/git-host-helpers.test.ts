import { describe, expect, it } from "vitest";
import { checkChangeRequestInput, checkStatusDescription, describeRepo, isServedProtocol, isWebUrl, parseScpLikeRemote } from "./git-host-helpers.js";

describe("git-host helpers", () => {
  it("describeRepo drops credentials, query and fragment, and what precedes an @ in a non-URL", () => {
    expect(describeRepo("https://oauth2:glpat-secret@gitlab.example.test/acme/app.git?private_token=x#frag")).toBe("https://gitlab.example.test/acme/app.git");
    expect(describeRepo("token-secret@host:acme/app.git")).toBe('"host:acme/app.git"');
    expect(describeRepo(42)).toBe("a number");
  });

  it("isWebUrl takes http(s) URLs with a host only", () => {
    expect(isWebUrl(" https://gitlab.com/acme/app ")).toBe(true);
    expect(isWebUrl("http://127.0.0.1:8080/acme/app")).toBe(true);
    expect(isWebUrl("git@gitlab.com:acme/app.git")).toBe(false);
    expect(isWebUrl("ftp://gitlab.com/acme/app")).toBe(false);
    expect(isWebUrl(undefined)).toBe(false);
  });

  it("parseScpLikeRemote reads user@host:path only, with the host in lower case", () => {
    expect(parseScpLikeRemote("git@GitLab.example.test:acme/sub/app.git")).toEqual({ host: "gitlab.example.test", path: "acme/sub/app.git" });
    expect(parseScpLikeRemote("ssh://git@gitlab.example.test/acme/app.git")).toBeUndefined();
    expect(parseScpLikeRemote("https://gitlab.example.test/acme/app")).toBeUndefined();
    expect(parseScpLikeRemote("gitlab.example.test:acme/app")).toBeUndefined();
  });

  it("isServedProtocol: https and ssh always, http only for a served http URL on the same host and port", () => {
    const served = ["http://127.0.0.1:8080/gitlab", "https://git.example.test"];
    expect(isServedProtocol(new URL("https://anything.example.test/a/b"), served)).toBe(true);
    expect(isServedProtocol(new URL("ssh://git@anything.example.test/a/b"), served)).toBe(true);
    expect(isServedProtocol(new URL("http://127.0.0.1:8080/gitlab/a/b"), served)).toBe(true);
    expect(isServedProtocol(new URL("http://127.0.0.1:8081/a/b"), served)).toBe(false);
    expect(isServedProtocol(new URL("http://git.example.test/a/b"), served)).toBe(false);
    expect(isServedProtocol(new URL("file:///a/b"), served)).toBe(false);
  });

  it("checkChangeRequestInput refuses empty head, base or title, a non-string body and lists with empty entries", () => {
    const input = { head: "agent/x", base: "main", title: "T", body: "" };
    expect(() => checkChangeRequestInput(input)).not.toThrow();
    for (const bad of [{ head: " " }, { base: "" }, { title: undefined }, { body: undefined }, { labels: ["ok", ""] }, { reviewers: "alice" }, { assignees: [1] }]) {
      expect(() => checkChangeRequestInput({ ...input, ...bad } as never)).toThrow(expect.objectContaining({ code: "INVALID_OPTIONS" }));
    }
  });

  it("checkStatusDescription says how the check ended and cuts to the host's limit", () => {
    const check = { name: "test", command: "npm test", passed: false, exitCode: 1, timedOut: false, durationMs: 1234 };
    expect(checkStatusDescription(check, 0, 140)).toBe("npm test failed with exit code 1 in 1.2 s");
    expect(checkStatusDescription({ ...check, passed: true }, 1, 140)).toBe("npm test passed in 1.2 s after 1 fix round");
    expect(checkStatusDescription({ ...check, timedOut: true }, 2, 140)).toBe("npm test timed out in 1.2 s after 2 fix rounds");
    const long = checkStatusDescription({ ...check, command: "x".repeat(300) }, 0, 140);
    expect(long).toHaveLength(140);
    expect(long.endsWith("…")).toBe(true);
  });
});
