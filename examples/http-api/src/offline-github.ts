import { startGitHubServer } from "@running-agent/git-github/testing";
import { startServerProcess, stopOnSignals } from "./server-process.js";

/** The seed README's repository (`https://github.com/you/your-repo.git`), with a utils module to test. */
const SEED_OWNER = "you";
const SEED_REPOSITORY = "your-repo";
const SEED_FILES = {
  "README.md": "# your-repo\n\nA small TypeScript library.\n",
  "package.json": `${JSON.stringify({ name: "your-repo", version: "1.0.0", type: "module", scripts: { test: "node --test" } }, null, 2)}\n`,
  "src/utils.ts": "export function add(a: number, b: number): number {\n  return a + b;\n}\n\nexport function slugify(text: string): string {\n  return text.toLowerCase().trim().replace(/[^a-z0-9]+/g, \"-\").replace(/^-|-$/g, \"\");\n}\n",
};

/**
 * `pnpm start:offline-github`: the API as `pnpm start` runs it, with GitHub as its Git host,
 * answered by the local GitHub-compatible server (`@running-agent/git-github/testing`) on
 * loopback, which holds `you/your-repo`. `https://github.com/…` URLs are accepted as on
 * GitHub; clones, pushes and pull requests go to the local server. Nothing leaves the machine
 * (the model is the scripted one unless configured).
 */
async function main(): Promise<void> {
  const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
  const github = await startGitHubServer();
  try {
    await github.createRepository({ owner: SEED_OWNER, name: SEED_REPOSITORY, files: SEED_FILES });
    const token = github.grantToken({ login: SEED_OWNER });
    log(`local GitHub-compatible server: ${github.url} (API ${github.apiUrl}), repository https://github.com/${SEED_OWNER}/${SEED_REPOSITORY}.git`);
    const server = await startServerProcess(
      { ...process.env, RUNNING_AGENT_GIT_HOST: "github", GITHUB_TOKEN: token, GITHUB_API_URL: github.apiUrl, GITHUB_WEB_URL: "https://github.com", GITHUB_GIT_URL: github.gitUrl },
      { log, repoUrlExample: `https://github.com/${SEED_OWNER}/${SEED_REPOSITORY}.git` },
    );
    stopOnSignals(log, async () => {
      await server.stop();
      await github.close();
    });
  } catch (error) {
    await github.close();
    throw error;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
