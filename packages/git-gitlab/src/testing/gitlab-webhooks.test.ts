import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { Gitlab } from "@gitbeaker/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitLabServer, type GitLabServer, type IssueHookPayload, type IssueNoteHookPayload } from "./index.js";

describe("the local GitLab server's issues, notes, members and webhooks", () => {
  let server: GitLabServer;
  const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  const receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
      response.writeHead(request.headers["x-gitlab-token"] === "hook-secret" ? 202 : 401, { "content-type": "text/plain" });
      response.end("seen");
    });
  });

  beforeAll(async () => {
    server = await startGitLabServer();
    await server.createProject({ path: "acme/app", members: { alice: "developer", bot: "developer" } });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    server.addWebhook("acme/app", { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`, token: "hook-secret" });
  });

  afterAll(async () => {
    await server?.close();
    await new Promise((resolve) => receiver.close(resolve));
  });

  it("sends a Note Hook for a comment and an Issue Hook for a label, with the secret as X-Gitlab-Token and an Idempotency-Key kept on a resend", async () => {
    const { iid } = server.createIssue("acme/app", { title: "Add multiply", description: "Next to add.", author: "alice" });
    const [note] = await server.commentOnIssue("acme/app", iid, { author: "alice", body: "/agent please" });
    expect(note).toMatchObject({ event: "Note Hook", status: 202, responseBody: "seen" });
    const noteRequest = received.at(-1)!;
    expect(noteRequest.headers).toMatchObject({ "x-gitlab-event": "Note Hook", "x-gitlab-token": "hook-secret", "content-type": "application/json", "idempotency-key": note!.idempotencyKey });
    const notePayload = JSON.parse(noteRequest.body) as IssueNoteHookPayload;
    expect(notePayload).toMatchObject({ object_kind: "note", user: { username: "alice" }, project: { path_with_namespace: "acme/app", git_http_url: `${server.url}/acme/app.git` }, object_attributes: { note: "/agent please", noteable_type: "Issue" }, issue: { iid, title: "Add multiply", description: "Next to add." } });

    const [label] = await server.labelIssue("acme/app", iid, { author: "alice", label: "agent" });
    const labelPayload = JSON.parse(received.at(-1)!.body) as IssueHookPayload;
    expect(label!.event).toBe("Issue Hook");
    expect(labelPayload.changes.labels.previous).toEqual([]);
    expect(labelPayload.changes.labels.current.map((entry) => entry.title)).toEqual(["agent"]);

    const again = await server.resendWebhook(note!);
    expect(received.at(-1)!.headers["idempotency-key"]).toBe(note!.idempotencyKey);
    expect(received.at(-1)!.body).toBe(noteRequest.body);
    expect(again.status).toBe(202);
  });

  it("answers notes and members through @gitbeaker/rest as GitLab does", async () => {
    const { iid } = server.createIssue("acme/app", { title: "Another", author: "alice" });
    const gitlab = new Gitlab({ host: server.url, token: server.createPersonalAccessToken("bot") });
    const created = await gitlab.IssueNotes.create("acme/app", iid, "On it.");
    expect(created).toMatchObject({ body: "On it.", noteable_type: "Issue", noteable_iid: iid, author: { username: "bot" } });
    expect((await gitlab.IssueNotes.all("acme/app", iid)).map((note) => note.body)).toEqual(["On it."]);
    expect(server.issueNotes("acme/app", iid)).toEqual([{ author: "bot", body: "On it." }]);
    await expect(gitlab.IssueNotes.create("acme/app", 999, "x")).rejects.toMatchObject({ cause: { response: { status: 404 } } });

    const alice = server.createUser("alice");
    expect(await gitlab.ProjectMembers.show("acme/app", alice.id, { includeInherited: true })).toMatchObject({ username: "alice", access_level: 30 });
    const stranger = server.createUser("stranger");
    await expect(gitlab.ProjectMembers.show("acme/app", stranger.id, { includeInherited: true })).rejects.toMatchObject({ cause: { response: { status: 404 } } });
  });
});
