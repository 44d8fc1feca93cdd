import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createLocalGitHost, runAgentTask, type AgentTaskEvent } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf } from "@running-agent/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docker, expectNoContainers, scopedProvider } from "./test-engine.js";

// Docker with egress "proxy": `none` networking, the only ways out and in are relays to the host's egress proxy.
const API_KEY = "scripted-docker-egress-key";
const relayTools = ["nsenter", "socat"].every((tool) => {
  try {
    execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
});

describe.skipIf(!relayTools || process.getuid?.() !== 0)("the Docker sandbox behind the egress proxy", () => {
  let service: Server;
  let servicePort = 0;
  let serviceRequests = 0;
  beforeAll(async () => {
    service = createServer((_request, response) => {
      serviceRequests += 1;
      response.end("host-loopback-service-reached");
    });
    await new Promise<void>((resolve) => service.listen(0, "127.0.0.1", resolve));
    servicePort = (service.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => service.close(() => resolve())));

  it("runs the agent with the key on the host; the host's loopback is out of reach; refusals are events and in the PR body; nothing is left", async () => {
    await using repo = await createTestRepository({ "README.md": "# demo\n" });
    const probes = [
      `git ls-remote http://127.0.0.1:${servicePort}/direct.git || echo direct-failed`,
      `env -u NO_PROXY -u no_proxy git ls-remote http://127.0.0.1:${servicePort}/proxied.git || echo proxied-failed`,
      `env -u NO_PROXY -u no_proxy git ls-remote http://localhost:${servicePort}/rebound.git || echo rebinding-failed`,
      "git ls-remote https://10.1.2.3/private.git || echo private-literal-failed",
      "git ls-remote https://not-allowed.invalid/x.git || echo unknown-name-failed",
    ].join("; ");
    let toolOutput = "";
    await using model = await startScriptedModelServer({
      apiKey: API_KEY,
      script: [
        (request) => ({ toolCalls: [{ name: "bash", arguments: { command: probes, description: "Probe the network", workdir: workingDirectoryOf(request) } }] }),
        (request) => {
          toolOutput = JSON.stringify((request.body?.messages as Array<{ role: string }>).filter((message) => message.role === "tool"));
          return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: "probed\n" } }] };
        },
        { text: "Probed." },
      ],
    });
    const { provider, run } = scopedProvider({ egress: "proxy" });
    const gitHost = createLocalGitHost();
    const events: AgentTaskEvent[] = [];
    let seen: { networkMode: string | undefined; keyInEnv: boolean } | undefined;
    const result = await runAgentTask({
      repo: repo.path,
      task: "Probe the network and write NOTES.md",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
      sandbox: provider,
      gitHost,
      // An allowed name that resolves to loopback (DNS rebinding) must still be refused.
      network: { allow: ["localhost"] },
      onEvent: (event) => {
        events.push(event);
        if (event.type === "sandbox") {
          void docker
            .getContainer(event.sandboxId)
            .inspect()
            .then((info) => (seen = { networkMode: info.HostConfig.NetworkMode, keyInEnv: info.Config.Env.some((entry) => entry.includes(API_KEY)) }));
        }
      },
    });

    expect(result.status).toBe("completed");
    expect(await repo.git("show", `${result.branch}:NOTES.md`)).toBe("probed\n");
    expect(seen).toEqual({ networkMode: "none", keyInEnv: false });
    expect(model.chatRequests.every((request) => request.headers.authorization === `Bearer ${API_KEY}`)).toBe(true);
    expect(toolOutput).toContain("direct-failed");
    expect(toolOutput).toContain("proxied-failed");
    expect(toolOutput).toContain("rebinding-failed");
    expect(toolOutput).toContain("private-literal-failed");
    expect(toolOutput).toContain("unknown-name-failed");
    expect(serviceRequests).toBe(0);
    const blocked = events.filter((event): event is Extract<AgentTaskEvent, { type: "network.blocked" }> => event.type === "network.blocked");
    expect(blocked.map((event) => `${event.method} ${event.host}:${event.port}`)).toEqual([
      `GET 127.0.0.1:${servicePort}`,
      `GET localhost:${servicePort}`,
      "CONNECT 10.1.2.3:443",
      "CONNECT not-allowed.invalid:443",
    ]);
    expect(blocked[1]!.reason).toMatch(/resolves to .*loopback/);
    const [changeRequest] = await gitHost.listChangeRequests(repo.path);
    expect(changeRequest!.body).toContain(`\`127.0.0.1:${servicePort}\``);
    expect(changeRequest!.body).toContain("`not-allowed.invalid:443`");
    await expectNoContainers(run);
    const relays = execFileSync("ps", ["-eo", "args="], { encoding: "utf8" }).split("\n").filter((line) => line.startsWith("nsenter") || line.includes("running-agent-docker-relay-"));
    expect(relays).toEqual([]);
  });
});
