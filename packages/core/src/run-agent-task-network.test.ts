import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalGitHost, createLocalSandbox, runAgentTask } from "./index.js";
import type { AgentTaskEvent } from "./index.js";
import { findExecutable } from "./sandbox-local/bubblewrap.js";
import { blockedRequests, createTestRepository, networkProbeScript, startLoopbackService, startScriptedModelServer, usePrivateTmpdir, type LoopbackService } from "./testing/index.js";

const API_KEY = "scripted-model-key-network-e2e";
const ready = findExecutable("bwrap") !== undefined && findExecutable("socat") !== undefined && findExecutable("curl") !== undefined;

usePrivateTmpdir("running-agent-net-e2e-tmp-");
let service: LoopbackService;
beforeAll(async () => {
  service = await startLoopbackService();
});
afterAll(() => service.close());

describe.skipIf(!ready)("runAgentTask under the enforced network policy (local sandbox, real OpenCode, scripted model)", () => {
  it("the agent works through the egress proxy; the host's loopback is out of reach; refusals are events and listed in the PR body; nothing is left", async () => {
    await using repo = await createTestRepository({ "README.md": "# demo\n" });
    const probe = networkProbeScript(
      [
        `curl -sS --max-time 20 ${service.url}/ || echo direct-failed`,
        `curl -sS --max-time 20 --proxy http://127.0.0.1:3128 --noproxy '' ${service.url}/ || echo proxied-failed`,
        "curl -sS --max-time 20 https://not-allowed.invalid/ || echo unknown-name-failed",
      ].join("; "),
    );
    await using model = await startScriptedModelServer({ apiKey: API_KEY, script: probe.script });
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
      setupCommands: [`curl -sS --fail --max-time 20 --proxy http://127.0.0.1:3128 --noproxy "" ${service.url}/ > /scratch/setup-reached.txt`],
      onEvent: (event) => events.push(event),
    });

    expect(result.status).toBe("completed");
    expect(await repo.git("show", `${result.branch}:NOTES.md`)).toBe("probed\n");
    // The agent saw its probes fail and never the service's answer.
    expect(probe.toolOutput).toContain("direct-failed");
    expect(probe.toolOutput).toContain("Refused by the sandbox's network policy");
    expect(probe.toolOutput).toContain("unknown-name-failed");
    expect(probe.toolOutput).not.toContain(service.marker);
    // Only the setup command, under its own policy, reached the service.
    expect(service.requests).toBe(1);
    // The setup command reached it under its own policy (its output stayed in the sandbox's scratch folder).
    expect(events.some((event) => event.type === "phase" && event.phase === "setup" && event.status === "completed")).toBe(true);
    // The model still got every request, with the key added on the host.
    const chats = model.requests.filter((request) => request.path.endsWith("/chat/completions"));
    expect(chats.length).toBe(3);
    expect(chats.every((request) => request.headers.authorization === `Bearer ${API_KEY}`)).toBe(true);

    expect(blockedRequests(events)).toEqual([`GET 127.0.0.1:${service.port}`, "CONNECT not-allowed.invalid:443"]);
    const [changeRequest] = await gitHost.listChangeRequests(repo.path);
    expect(changeRequest!.body).toContain("## Blocked network requests");
    expect(changeRequest!.body).toContain(`\`127.0.0.1:${service.port}\``);
    expect(changeRequest!.body).toContain("`not-allowed.invalid:443`");

    // Nothing is left: no session or proxy folder, no process of the sandbox.
    expect(readdirSync(tmpdir()).filter((name) => name.startsWith("running-agent-") && !name.startsWith("running-agent-test-repo-"))).toEqual([]);
    const sandboxId = (events.find((event) => event.type === "sandbox") as Extract<AgentTaskEvent, { type: "sandbox" }>).sandboxId;
    const processes = execFileSync("ps", ["-eo", "args="], { encoding: "utf8" }).split("\n").filter((line) => line.includes(sandboxId) && !line.includes("ps -eo"));
    expect(processes).toEqual([]);
  });
});
