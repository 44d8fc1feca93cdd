import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { AgentTaskEvent } from "../events.js";
import { workingDirectoryOf, type ScriptedTurn } from "./scripted-model-server.js";

/** A service on the host's loopback that counts its requests: a sandbox reaching it is what a network test looks for. */
export interface LoopbackService extends AsyncDisposable {
  /** `http://<host>:<port>`. */
  readonly url: string;
  /** The loopback address it listens on (127.0.0.1 unless another 127.x was asked for). */
  readonly host: string;
  /** The port it listens on, chosen free at start. */
  readonly port: number;
  /** What it answers: a probe's output that contains it reached the service. */
  readonly marker: string;
  /** Requests it has had so far. */
  readonly requests: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** Starts a {@link LoopbackService} on `host` (default 127.0.0.1; any 127.x address is the host's loopback too). */
export async function startLoopbackService(options: { host?: string; marker?: string } = {}): Promise<LoopbackService> {
  const host = options.host ?? "127.0.0.1";
  const marker = options.marker ?? "host-loopback-service-reached";
  let requests = 0;
  const server = createServer((_request, response) => {
    requests += 1;
    response.end(marker);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://${host}:${port}`,
    host,
    port,
    marker,
    get requests() {
      return requests;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A scripted agent that runs network probes, and what its tool printed. */
export interface NetworkProbeScript {
  /** For `startScriptedModelServer({ script })`. */
  readonly script: ScriptedTurn[];
  /** The tool messages the model got back after the probes (JSON), once the second turn ran. */
  readonly toolOutput: string;
}

/**
 * Three turns: bash runs `command` (the probes; end each with `|| echo <name>-failed` to see it in
 * {@link NetworkProbeScript.toolOutput}), then the agent writes `NOTES.md` ("probed\n"), then it finishes.
 */
export function networkProbeScript(command: string): NetworkProbeScript {
  let toolOutput = "";
  const script: ScriptedTurn[] = [
    (request) => ({ toolCalls: [{ name: "bash", arguments: { command, description: "Probe the network", workdir: workingDirectoryOf(request) } }] }),
    (request) => {
      const messages = request.body?.messages as Array<{ role: string }> | undefined;
      toolOutput = JSON.stringify((messages ?? []).filter((message) => message.role === "tool"));
      return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: "probed\n" } }] };
    },
    { text: "Probed the network and wrote notes." },
  ];
  return {
    script,
    get toolOutput() {
      return toolOutput;
    },
  };
}

/** The `network.blocked` events of a run, each as `METHOD host:port`. */
export function blockedRequests(events: readonly AgentTaskEvent[]): string[] {
  return events.flatMap((event) => (event.type === "network.blocked" ? [`${event.method} ${event.host}:${event.port}`] : []));
}
