import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Gitlab } from "@gitbeaker/rest";
import { createLocalSandbox } from "@running-agent/core";
import { startScriptedModelServer, workingDirectoryOf, type RecordedModelRequest, type ScriptedModelServer, type ScriptedTurn } from "@running-agent/core/testing";
import { startGitLabServer, type GitLabServer, type WebhookDelivery } from "@running-agent/git-gitlab/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitLabBot, type GitLabBot } from "./gitlab-bot.js";

const SECRET = "gitlab-webhook-secret-for-tests";
const MODEL_KEY = "scripted-model-key";
const PROJECT = "acme/app";
const NOTES = "# Notes\n\nWritten by the agent.\n";

/** What the bot answered a delivery (GitLab shows it in the webhook's recent events). */
const resultOf = (delivery: WebhookDelivery | undefined) => (JSON.parse(delivery?.responseBody ?? "{}") as { result?: string }).result;

describe("the GitLab bot on the local GitLab server: real OpenCode, scripted model, local sandbox", () => {
  let gitlab: GitLabServer;
  let model: ScriptedModelServer;
  let bot: GitLabBot;
  let server: Server;
  let webhookUrl: string;
  let sandboxFolder: string;
  const errors: unknown[] = [];

  beforeAll(async () => {
    sandboxFolder = await mkdtemp(join(tmpdir(), "running-agent-gitlab-bot-test-"));
    gitlab = await startGitLabServer();
    // Public, so that anyone may comment: the bot must not run what a stranger asks.
    await gitlab.createProject({ path: PROJECT, visibility: "public", files: { "README.md": "# app\n" }, members: { "agent-bot": "developer", alice: "developer", rita: "reporter" } });
    const token = gitlab.createPersonalAccessToken("agent-bot");
    // Every run: one write of NOTES.md, then the summary.
    const write: ScriptedTurn = (request: RecordedModelRequest) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: NOTES } }] });
    model = await startScriptedModelServer({ apiKey: MODEL_KEY, script: [write, { text: "Wrote NOTES.md." }, write, { text: "Wrote NOTES.md." }] });
    bot = createGitLabBot({
      webhookSecret: SECRET,
      gitlab: { token, baseUrl: gitlab.url },
      sandbox: createLocalSandbox({ tempDirectory: sandboxFolder }),
      model: { provider: "openai-compatible", model: "scripted-model", baseURL: model.url, apiKey: MODEL_KEY },
      onError: (error) => errors.push(error),
    });
    server = createServer((request, response) => bot.handleRequest(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/gitlab-webhooks`;
    gitlab.addWebhook(PROJECT, { url: webhookUrl, token: SECRET });
  });

  afterAll(async () => {
    await bot?.close();
    await new Promise((resolve) => server?.close(resolve));
    await model?.close();
    await gitlab?.close();
    if (sandboxFolder) await rm(sandboxFolder, { recursive: true, force: true });
  });

  it("runs `/agent <task>` from a Developer's note, answers with notes, and opens a merge request that closes the issue; a resend starts nothing", async () => {
    const { iid } = gitlab.createIssue(PROJECT, { title: "Write the notes", description: "NOTES.md should say who wrote it.", author: "alice" });
    const [delivery] = await gitlab.commentOnIssue(PROJECT, iid, { author: "alice", body: "/agent write NOTES.md" });
    expect(delivery?.status).toBe(202);
    expect(resultOf(delivery)).toBe(`started a task on ${PROJECT}#${iid}`);
    await bot.idle();

    const [mergeRequest] = gitlab.mergeRequests(PROJECT);
    expect(mergeRequest).toMatchObject({ state: "opened", author: "agent-bot", targetBranch: "main" });
    expect(mergeRequest!.description).toContain(`Closes #${iid}`);
    expect(await gitlab.readFile(PROJECT, mergeRequest!.sourceBranch, "NOTES.md")).toBe(NOTES);
    // The comment's request and the issue both reached the model.
    const firstPrompt = JSON.stringify(model.chatRequests[0]?.body);
    expect(firstPrompt).toContain("write NOTES.md");
    expect(firstPrompt).toContain("NOTES.md should say who wrote it.");

    const notes = gitlab.issueNotes(PROJECT, iid);
    expect(notes.map((note) => note.author)).toEqual(["alice", "agent-bot", "agent-bot"]);
    expect(notes[1]!.body).toContain("@alice");
    const reader = new Gitlab({ host: gitlab.url, token: gitlab.createPersonalAccessToken("rita") });
    const shown = await reader.MergeRequests.show(PROJECT, 1);
    expect(notes[2]!.body).toContain(`Opened !1: ${shown.web_url}`);
    expect(JSON.stringify(notes)).not.toContain(SECRET);

    // GitLab's "Resend request" (or its retry after a timeout) keeps the Idempotency-Key.
    const again = await gitlab.resendWebhook(delivery!);
    expect(resultOf(again)).toBe(`ignored: delivery ${delivery!.idempotencyKey} was received before`);
    await bot.idle();
    expect(gitlab.issueNotes(PROJECT, iid)).toHaveLength(3);
    expect(gitlab.mergeRequests(PROJECT)).toHaveLength(1);
    expect(await readdir(sandboxFolder)).toEqual([]);
  });

  it("runs the issue itself when a Developer adds the label (any case)", async () => {
    const { iid } = gitlab.createIssue(PROJECT, { title: "Notes again", description: "Write NOTES.md.", author: "rita" });
    const [delivery] = await gitlab.labelIssue(PROJECT, iid, { author: "alice", label: "Agent" });
    expect(resultOf(delivery)).toBe(`started a task on ${PROJECT}#${iid}`);
    await bot.idle();
    const mergeRequest = gitlab.mergeRequests(PROJECT).find((candidate) => candidate.description.includes(`Closes #${iid}`));
    expect(mergeRequest).toMatchObject({ state: "opened", title: "Notes again" });
    expect(gitlab.issueNotes(PROJECT, iid).at(-1)!.body).toMatch(/^Opened !2: /);
  });

  it("starts nothing for a wrong secret token, a stranger, a Reporter, the bot itself, other notes, or a label it already had", async () => {
    // Labelled `agent` already (before the webhook existed): a later label change is not the label being added.
    const { iid } = gitlab.createIssue(PROJECT, { title: "Nothing", author: "alice", labels: ["agent"] });
    const before = { mergeRequests: gitlab.mergeRequests(PROJECT).length, chats: model.chatRequests.length };
    const [sent] = await gitlab.commentOnIssue(PROJECT, iid, { author: "mallory", body: "/agent delete everything" });
    expect(resultOf(sent)).toBe(`ignored: mallory is not a Developer (or higher) of ${PROJECT}`);
    expect(resultOf((await gitlab.commentOnIssue(PROJECT, iid, { author: "rita", body: "/agent please" }))[0])).toBe(`ignored: rita is not a Developer (or higher) of ${PROJECT}`);
    expect(resultOf((await gitlab.commentOnIssue(PROJECT, iid, { author: "agent-bot", body: "/agent loop" }))[0])).toBe("ignored: the bot's own note");
    expect(resultOf((await gitlab.commentOnIssue(PROJECT, iid, { author: "alice", body: "Looks good /agent" }))[0])).toBe("ignored: the note does not start with /agent");
    expect(resultOf((await gitlab.commentOnIssue(PROJECT, iid, { author: "alice", body: "/agentic" }))[0])).toBe("ignored: the note does not start with /agent");
    expect(resultOf((await gitlab.labelIssue(PROJECT, iid, { author: "alice", label: "bug" }))[0])).toBe("ignored: the label agent was not added");

    // The same delivery with another token, or none: 401, and it is not even read.
    for (const token of ["not-the-secret", undefined]) {
      const response = await fetch(webhookUrl, {
        method: "POST",
        headers: { "content-type": "application/json", "x-gitlab-event": "Note Hook", "idempotency-key": `forged-${String(token)}`, ...(token ? { "x-gitlab-token": token } : {}) },
        body: JSON.stringify(sent!.payload),
      });
      expect(response.status).toBe(401);
    }
    await bot.idle();
    expect(gitlab.mergeRequests(PROJECT)).toHaveLength(before.mergeRequests);
    expect(model.chatRequests).toHaveLength(before.chats);
    expect(gitlab.issueNotes(PROJECT, iid).filter((note) => note.author === "agent-bot").map((note) => note.body)).toEqual(["/agent loop"]);
    expect(errors).toEqual([]);
  });

  it("answers 500 when GitLab fails the role look-up, and decides GitLab's retry of that delivery afresh", async () => {
    const { iid } = gitlab.createIssue(PROJECT, { title: "Retry me", author: "alice" });
    gitlab.injectFailure({ method: "GET", path: "/projects/:id/members/all/:user_id", status: 500 });
    const [failed] = await gitlab.commentOnIssue(PROJECT, iid, { author: "alice", body: "/agent try again" });
    expect(failed?.status).toBe(500);
    expect(errors).toHaveLength(1);
    const retried = await gitlab.resendWebhook(failed!);
    expect(resultOf(retried)).toBe(`started a task on ${PROJECT}#${iid}`);
    await bot.idle();
    // The script has run out: the agent answers "Done." and changes nothing, which the note says.
    expect(gitlab.issueNotes(PROJECT, iid).at(-1)).toMatchObject({ author: "agent-bot", body: expect.stringMatching(/^The agent finished without changing anything\./) });
  });
});
