import { Gitlab } from "@gitbeaker/rest";
import type { ResolvedRepository } from "@running-agent/core";
import { afterAll, beforeAll, bench, describe } from "vitest";
import { createGitLab, type GitLab } from "./index.js";
import { startGitLabServer, type GitLabServer } from "./testing/index.js";

// Run with `pnpm vitest bench --run src/merge-request.bench.ts`. The baseline is the same
// project read with @gitbeaker/rest as it ships, so the ratio is what the adapter adds (its own
// request handler, the checks) over one plain client call on the same server.
let server: GitLabServer;
let gitLab: GitLab;
let plain: InstanceType<typeof Gitlab>;
let repository: ResolvedRepository;
let counter = 0;

beforeAll(async () => {
  server = await startGitLabServer();
  await server.createProject({ path: "acme/platform/bench", members: { "bench-bot": "developer", alice: "developer" } });
  const token = server.createPersonalAccessToken("bench-bot");
  gitLab = createGitLab({ token, baseUrl: server.url });
  plain = new Gitlab({ host: server.url, token });
  repository = await gitLab.resolveRepository(`${server.url}/acme/platform/bench`);
});

afterAll(async () => {
  await server?.close();
});

async function newBranch(): Promise<string> {
  counter += 1;
  const branch = `bench/${counter}`;
  await server.createBranch("acme/platform/bench", branch);
  return branch;
}

describe("GitLab host on the local server", () => {
  bench("baseline: @gitbeaker/rest Projects.show", async () => {
    await plain.Projects.show("acme/platform/bench");
  }, { iterations: 50, time: 0 });

  bench("resolveRepository", async () => {
    await gitLab.resolveRepository(`${server.url}/acme/platform/bench`);
  }, { iterations: 50, time: 0 });

  bench("openChangeRequest: open, title and body only", async () => {
    await gitLab.openChangeRequest(repository, { head: await newBranch(), base: "main", title: "Bench", body: "Body" });
  }, { iterations: 20, time: 0 });

  bench("openChangeRequest: open with labels, a reviewer and an assignee", async () => {
    await gitLab.openChangeRequest(repository, { head: await newBranch(), base: "main", title: "Bench", body: "Body", labels: ["agent"], reviewers: ["alice"], assignees: ["alice"] });
  }, { iterations: 20, time: 0 });

  bench("openChangeRequest: update the open one", async () => {
    await gitLab.openChangeRequest(repository, { head: "bench/1", base: "main", title: `Bench ${counter++}`, body: "Updated", draft: true });
  }, { iterations: 20, time: 0 });
});
