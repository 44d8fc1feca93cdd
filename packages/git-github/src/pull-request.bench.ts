import { afterAll, beforeAll, bench, describe } from "vitest";
import type { ResolvedRepository } from "@running-agent/core";
import { createGitHub, type GitHub } from "./index.js";
import { startGitHubServer, type GitHubServer } from "./testing/index.js";

// Run with `pnpm vitest bench --run src/pull-request.bench.ts`. The figures are dominated by
// @octokit/plugin-throttling's spacing of writes (1 s) and of notifying writes such as opening a
// pull request or requesting reviewers (3 s), which GitHub asks integrators to keep.
let server: GitHubServer;
let gitHub: GitHub;
let repository: ResolvedRepository;
let counter = 0;

beforeAll(async () => {
  server = await startGitHubServer();
  await server.createRepository({ owner: "octo", name: "bench", files: { "README.md": "# bench\n" }, collaborators: ["alice"] });
  const token = server.grantToken({ login: "bench-bot" });
  gitHub = createGitHub({ token, baseUrl: server.apiUrl });
  repository = await gitHub.resolveRepository(`${server.url}/octo/bench`);
});

afterAll(async () => {
  await server?.close();
});

async function pushBranch(): Promise<string> {
  counter += 1;
  const branch = `bench/${counter}`;
  await server.commit("octo/bench", { branch, files: { [`file-${counter}.txt`]: `${counter}\n` } });
  return branch;
}

describe("GitHub host on the local server", () => {
  bench("resolveRepository", async () => {
    await gitHub.resolveRepository(`${server.url}/octo/bench`);
  }, { iterations: 20, time: 0 });

  bench("openChangeRequest: open, title and body only", async () => {
    await gitHub.openChangeRequest(repository, { head: await pushBranch(), base: "main", title: "Bench", body: "Body" });
  }, { iterations: 3, time: 0, warmupIterations: 0, warmupTime: 0 });

  bench("openChangeRequest: open with labels, a reviewer and an assignee", async () => {
    await gitHub.openChangeRequest(repository, { head: await pushBranch(), base: "main", title: "Bench", body: "Body", labels: ["agent"], reviewers: ["alice"], assignees: ["alice"] });
  }, { iterations: 3, time: 0, warmupIterations: 0, warmupTime: 0 });
});
