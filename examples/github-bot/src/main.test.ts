import { spawn } from "node:child_process";
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
});
