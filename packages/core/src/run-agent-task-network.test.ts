import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalGitHost, createLocalSandbox, runAgentTask } from "./index.js";
import type { AgentTaskEvent } from "./index.js";
import { findExecutable } from "./sandbox-local/bubblewrap.js";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf } from "./testing/index.js";

const MARKER = "host-loopback-service-reached";
const API_KEY = "scripted-model-key-network-e2e";
const ready = findExecutable("bwrap") !== undefined && findExecutable("socat") !== undefined && findExecutable("curl") !== undefined;

const originalTmpdir = process.env.TMPDIR;
let service: Server;
let servicePort = 0;
beforeAll(async () => {
  process.env.TMPDIR = mkdtempSync(join(tmpdir(), "running-agent-net-e2e-tmp-"));
  service = createServer((_request, response) => response.end(MARKER));
  await new Promise<void>((resolve) => service.listen(0, "127.0.0.1", resolve));
  servicePort = (service.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => service.close(() => resolve()));
  const privateTmp = process.env.TMPDIR!;
  if (originalTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = originalTmpdir;
  rmSync(privateTmp, { recursive: true, force: true });
});

describe.skipIf(!ready)("runAgentTask under the enforced network policy (local sandbox, real OpenCode, scripted model)", () => {
  it("the agent works through the egress proxy; the host's loopback is out of reach; refusals are events and listed in the PR body; nothing is left", async () => {
    await using repo = await createTestRepository({ "README.md": "# demo\n" });
    const probes = [
      `curl -sS --max-time 20 http://127.0.0.1:${servicePort}/ || echo direct-failed`,
      `curl -sS --max-time 20 --proxy http://127.0.0.1:3128 --noproxy '' http://127.0.0.1:${servicePort}/ || echo proxied-failed`,
      "curl -sS --max-time 20 https://not-allowed.invalid/ || echo unknown-name-failed",
    ].join("; ");
    let toolOutput = "";
    await using model = await startScriptedModelServer({
      apiKey: API_KEY,
      script: [
        (request) => ({ toolCalls: [{ name: "bash", arguments: { command: probes, description: "Probe the network", workdir: workingDirectoryOf(request) } }] }),
        (request) => {
          const messages = request.body?.messages as Array<{ role: string; content: unknown }>;
          toolOutput = JSON.stringify(messages.filter((message) => message.role === "tool"));
          return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: "probed\n" } }] };
        },
        { text: "Probed the network and wrote notes." },
      ],
    });
    const gitHost = createLocalGitHost();
    const events: AgentTaskEvent[] = [];
    const result = await runAgentTask({
      repo: repo.path,
      task: "Probe the network and write NOTES.md",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
      sandbox: createLocalSandbox(),
      gitHost,
      // The setup commands' own policy admits the host's service; the agent's (the default) does not.
      setupNetwork: { allow: ["127.0.0.1"] },
      setupCommands: [`curl -sS --fail --max-time 20 --proxy http://127.0.0.1:3128 --noproxy "" http://127.0.0.1:${servicePort}/ > /scratch/setup-reached.txt`],
      onEvent: (event) => events.push(event),
    });

    expect(result.status).toBe("completed");
    expect(await repo.git("show", `${result.branch}:NOTES.md`)).toBe("probed\n");
    // The agent saw its probes fail and never the service's answer.
    expect(toolOutput).toContain("direct-failed");
    expect(toolOutput).toContain("Refused by the sandbox's network policy");
    expect(toolOutput).toContain("unknown-name-failed");
    expect(toolOutput).not.toContain(MARKER);
    // The setup command reached it under its own policy (its output stayed in the sandbox's scratch folder).
    expect(events.some((event) => event.type === "phase" && event.phase === "setup" && event.status === "completed")).toBe(true);
    // The model still got every request, with the key added on the host.
    const chats = model.requests.filter((request) => request.path.endsWith("/chat/completions"));
    expect(chats.length).toBe(3);
    expect(chats.every((request) => request.headers.authorization === `Bearer ${API_KEY}`)).toBe(true);

    const blocked = events.filter((event): event is Extract<AgentTaskEvent, { type: "network.blocked" }> => event.type === "network.blocked");
    expect(blocked.map((event) => `${event.method} ${event.host}:${event.port}`)).toEqual([`GET 127.0.0.1:${servicePort}`, "CONNECT not-allowed.invalid:443"]);
    const [changeRequest] = await gitHost.listChangeRequests(repo.path);
    expect(changeRequest!.body).toContain("## Blocked network requests");
    expect(changeRequest!.body).toContain(`\`127.0.0.1:${servicePort}\``);
    expect(changeRequest!.body).toContain("`not-allowed.invalid:443`");

    // Nothing is left: no session or proxy folder, no process of the sandbox.
    expect(readdirSync(tmpdir()).filter((name) => name.startsWith("running-agent-") && !name.startsWith("running-agent-test-repo-"))).toEqual([]);
    const sandboxId = (events.find((event) => event.type === "sandbox") as Extract<AgentTaskEvent, { type: "sandbox" }>).sandboxId;
    const processes = execFileSync("ps", ["-eo", "args="], { encoding: "utf8" }).split("\n").filter((line) => line.includes(sandboxId) && !line.includes("ps -eo"));
    expect(processes).toEqual([]);
  });
});
