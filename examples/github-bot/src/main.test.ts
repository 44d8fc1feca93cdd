import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sign } from "@octokit/webhooks-methods";
import { describe, expect, it } from "vitest";

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts `pnpm start`'s command with the environment given; resolves with its output and exit code once it exits. */
function startBot(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/main.ts"], {
    cwd: packageRoot,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; output: string }>((resolve) => child.once("close", (code) => resolve({ code, output })));
  return { child, exited, output: () => output };
}

describe("the bot's start command (src/main.ts)", () => {
  it("refuses to start without the secret and the token (exit 64)", async () => {
    const { code, output } = await startBot({}).exited;
    expect(code).toBe(64);
    expect(output).toContain("Set GITHUB_WEBHOOK_SECRET and GITHUB_TOKEN");
  });

  it("listens, answers a signed ping, and stops on SIGTERM", async () => {
    const port = await freePort();
    const bot = startBot({ GITHUB_WEBHOOK_SECRET: "secret", GITHUB_TOKEN: "token", PORT: String(port), GITHUB_API_URL: "http://127.0.0.1:9/api/v3" });
    try {
      const deadline = Date.now() + 30_000;
      while (!bot.output().includes("listening on") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(bot.output()).toContain(`listening on http://127.0.0.1:${port}/webhooks`);
      const body = JSON.stringify({ zen: "Design for failure." });
      const response = await fetch(`http://127.0.0.1:${port}/webhooks`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-github-event": "ping", "x-github-delivery": "1", "x-hub-signature-256": await sign("secret", body) },
        body,
      });
      expect(response.status).toBe(200);
    } finally {
      bot.child.kill("SIGTERM");
    }
    const { code, output } = await bot.exited;
    expect(code, output).toBe(0);
    expect(output).toContain("github-bot: stopping");
  });

  it("refuses a sandbox it does not know and an App key that is not one, before listening (exit 64)", async () => {
    const badSandbox = await startBot({ GITHUB_WEBHOOK_SECRET: "secret", GITHUB_TOKEN: "token", RUNNING_AGENT_SANDBOX: "kubernetes" }).exited;
    expect(badSandbox.code, badSandbox.output).toBe(64);
    expect(badSandbox.output).toContain('RUNNING_AGENT_SANDBOX must be local, local-unisolated, docker, modal; it is "kubernetes".');
    const badKey = await startBot({ GITHUB_WEBHOOK_SECRET: "secret", GITHUB_APP_ID: "12", GITHUB_APP_INSTALLATION_ID: "34", GITHUB_APP_PRIVATE_KEY: "not a key" }).exited;
    expect(badKey.code, badKey.output).toBe(64);
    expect(badKey.output).toContain("createGitHub: app needs appId, a PEM privateKey");
    expect(badKey.output).not.toContain("not a key");
  });

  it("starts as a GitHub App with its key read from a file, on the sandbox the environment names", async () => {
    const folder = await mkdtemp(join(tmpdir(), "github-bot-main-"));
    const keyPath = join(folder, "app.pem");
    await writeFile(keyPath, generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString());
    const port = await freePort();
    const bot = startBot({ GITHUB_WEBHOOK_SECRET: "secret", GITHUB_APP_ID: "12", GITHUB_APP_INSTALLATION_ID: "34", GITHUB_APP_PRIVATE_KEY_PATH: keyPath, RUNNING_AGENT_SANDBOX: "local-unisolated", PORT: String(port), GITHUB_API_URL: "http://127.0.0.1:9/api/v3" });
    try {
      const deadline = Date.now() + 30_000;
      while (!bot.output().includes("listening on") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(bot.output()).toContain(`listening on http://127.0.0.1:${port}/webhooks (GitHub App 12, sandbox local, NOT isolated)`);
    } finally {
      bot.child.kill("SIGTERM");
      await rm(folder, { recursive: true, force: true });
    }
    const { code, output } = await bot.exited;
    expect(code, output).toBe(0);
  });
});
