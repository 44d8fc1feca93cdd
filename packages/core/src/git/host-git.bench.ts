// Host-side git on a repository of 2,000 files (about 4 MB): run with
//   pnpm --filter @running-agent/core exec vitest bench --run src/git/host-git.bench.ts
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, bench, describe } from "vitest";
import { packDirectory } from "../archive.js";
import { createLocalSandbox } from "../sandbox-local/local-sandbox.js";
import type { SandboxSession } from "../spec/sandbox-spec.js";
import { startGitHttpServer, type GitHttpServer } from "../testing/git-http-server.js";
import { cloneRepository } from "./clone.js";
import { collectChanges } from "./collect.js";
import { commitChanges } from "./commit.js";
import { createGitFixture, type GitFixture, type FixtureFile } from "./git-fixture.js";
import { pushBranch } from "./push.js";

const FILE_COUNT = 2000;
const TOKEN = "bench-token";
const credentials = { username: "bench", password: TOKEN };
const author = { name: "Bench", email: "bench@example.test" };
const options = { iterations: 5, warmupIterations: 1, time: 0, warmupTime: 0 };

let fixture: GitFixture;
let server: GitHttpServer;
let session: SandboxSession;
const folders: string[] = [];

async function folder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "running-agent-bench-"));
  folders.push(dir);
  return dir;
}

beforeAll(async () => {
  const files: Record<string, FixtureFile> = {};
  for (let index = 0; index < FILE_COUNT; index++) files[`src/module-${index % 40}/file-${index}.ts`] = `export const value${index} = ${index};\n`.repeat(60);
  fixture = await createGitFixture({ files, bare: true });
  server = await startGitHttpServer({ root: fixture.root, token: TOKEN });
  session = await createLocalSandbox({ isolation: "none" }).create({ taskId: "bench" });
});

afterAll(async () => {
  await session?.destroy();
  await server?.close();
  await fixture?.cleanup();
  for (const dir of folders) await rm(dir, { recursive: true, force: true });
});

const httpRepository = () => ({ id: "bench", remote: `${server.url}/repo.git`, defaultBranch: "main", canPush: true });
const localRepository = () => ({ id: "bench", remote: fixture.barePath, defaultBranch: "main", canPush: true });

describe("clone, depth 1", () => {
  bench("over http (git CLI, git http-backend)", async () => {
    await cloneRepository({ repository: httpRepository(), branch: "main", depth: 1, credentials, dir: await folder() });
  }, options);
  bench("local bare repository (git CLI)", async () => {
    await cloneRepository({ repository: localRepository(), branch: "main", depth: 1, dir: await folder() });
  }, options);
});

describe("collect 50 changed files, commit, push over http", () => {
  let dir = "";
  let round = 0;
  bench(
    "collect + commit + push",
    async () => {
      round++;
      const script = `for i in $(seq 0 49); do echo "// round ${round}" >> src/module-$((i % 40))/file-$i.ts; done`;
      await session.exec(["sh", "-ec", script]);
      await collectChanges({ session, dir });
      await commitChanges({ dir, branch: `bench/round-${round}`, message: `Round ${round}`, author });
      await pushBranch({ dir, repository: httpRepository(), branch: `bench/round-${round}`, credentials });
    },
    {
      ...options,
      setup: async () => {
        dir = await folder();
        await cloneRepository({ repository: httpRepository(), branch: "main", depth: 1, credentials, dir });
        await session.exec(["sh", "-ec", "rm -rf ./* ./.git"]);
        await session.putArchive(session.workdir, await packDirectory(dir));
      },
    },
  );
});
