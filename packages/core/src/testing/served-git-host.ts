import { GIT_HOST_SPEC_VERSION, type GitHost } from "../spec/git-host-spec.js";
import type { GitHttpServer } from "./git-http-server.js";
import type { TestRepository } from "./test-repository.js";

/**
 * A Git host for a test repository served over HTTP by git's own http-backend ({@link startGitHttpServer}):
 * the clone, the fetches, the pushes and the token check are real; only the change request is a record.
 * The repository is `<server>/<name of repo.path>`, id `test/repo`, default branch `main`.
 */
export function createServedGitHost(input: { server: GitHttpServer; repository: TestRepository; username: string; token: string }): GitHost {
  const { server, repository: repo, username, token } = input;
  const remote = `${server.url}/${repo.path.slice(repo.path.lastIndexOf("/") + 1)}`;
  const repository = { id: "test/repo", remote, defaultBranch: "main", canPush: true };
  return {
    specificationVersion: GIT_HOST_SPEC_VERSION,
    hostId: "test-http",
    supports: (url) => url === remote,
    resolveRepository: async () => repository,
    branchExists: async (_repository, branch) => (await repo.git("branch", "--list", branch)).trim() !== "",
    getCredentials: async () => ({ username, password: token }),
    openChangeRequest: async (_repository, change) => ({ number: 1, url: `${remote}/pull/1`, head: change.head, base: change.base, title: change.title, body: change.body, draft: false, created: true }),
  };
}
