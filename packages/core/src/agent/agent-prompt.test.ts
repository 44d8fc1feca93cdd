import { describe, expect, it } from "vitest";
import { agentPrompt, sessionTitle } from "./agent-prompt.js";

describe("agentPrompt", () => {
  it("keeps the task verbatim at the end, after the unattended-run rules", () => {
    const task = 'Fix `rm -rf $(pwd)`; "quotes" and\nnew lines stay as they are';
    const prompt = agentPrompt(task);
    expect(prompt.endsWith(`\n${task}`)).toBe(true);
    expect(prompt).toContain("Do not commit, push, or create branches");
    expect(prompt).toContain("short summary");
  });
});

describe("sessionTitle", () => {
  it("uses the first line, cut to 80 characters, and has a fallback", () => {
    expect(sessionTitle("  Add tests\nfor utils")).toBe("Add tests");
    expect(sessionTitle("x".repeat(100))).toHaveLength(80);
    expect(sessionTitle("   ")).toBe("Running Agent task");
  });
});
