import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { ClientError, createChannel, createClient, Metadata, Status } from "nice-grpc";
import { afterEach, describe, expect, it } from "vitest";
import { createModalSandbox } from "../index.js";
import { loadModalProtocol } from "./modal-protocol.js";
import { IMPLEMENTED_COMMAND_ROUTER_METHODS, IMPLEMENTED_CONTROL_PLANE_METHODS, startModalServer, type ModalServer } from "./modal-server.js";

let server: ModalServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function grpcError(call: Promise<unknown>): Promise<ClientError> {
  const error = await call.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ClientError);
  return error as ClientError;
}

describe("the local Modal-protocol server", () => {
  it("answers with the definitions generated inside the installed modal SDK", () => {
    const protocol = loadModalProtocol();
    const installed = JSON.parse(readFileSync(createRequire(import.meta.url).resolve("modal").replace(/dist\/index\.cjs$/, "package.json"), "utf8")) as { version: string };
    expect(protocol.sdkVersion).toBe(installed.version);
    expect(protocol.modalClient.fullName).toBe("modal.client.ModalClient");
    expect(protocol.taskCommandRouter.fullName).toBe("modal.task_command_router.TaskCommandRouter");
    for (const method of IMPLEMENTED_CONTROL_PLANE_METHODS) expect(protocol.modalClient.methods[method], method).toBeDefined();
    for (const method of IMPLEMENTED_COMMAND_ROUTER_METHODS) expect(protocol.taskCommandRouter.methods[method], method).toBeDefined();
  });

  it("answers methods it does not implement with UNIMPLEMENTED, so a newer SDK that needs more fails loudly", async () => {
    server = await startModalServer();
    const protocol = loadModalProtocol();
    const channel = createChannel(server.url);
    try {
      const client = createClient(protocol.modalClient as never, channel) as Record<string, (request: unknown, options?: unknown) => Promise<unknown>>;
      const metadata = new Metadata({ "x-modal-token-id": server.tokenId, "x-modal-token-secret": server.tokenSecret });
      expect((await grpcError(client.functionGet!({}, { metadata }))).code).toBe(Status.UNIMPLEMENTED);
      expect((await grpcError(client.sandboxCreate!({}, { metadata }))).code).toBe(Status.UNIMPLEMENTED);
      expect((await grpcError(client.appGetOrCreate!({ appName: "x" }))).code).toBe(Status.UNAUTHENTICATED);
    } finally {
      channel.close();
    }
  });

  it("guards the task command router with per-task tokens", async () => {
    server = await startModalServer();
    const provider = createModalSandbox({ serverUrl: server.url, tokenId: server.tokenId, tokenSecret: server.tokenSecret });
    await using first = await provider.create({ taskId: "one" });
    await using second = await provider.create({ taskId: "two" });
    const [firstRecord, secondRecord] = server.sandboxes();
    expect(first.id).toBe(firstRecord!.sandboxId);
    expect(second.id).toBe(secondRecord!.sandboxId);
    const control = createChannel(server.url);
    const router = createChannel(server.commandRouterUrl.replace("https:", "http:"));
    try {
      const controlClient = createClient(loadModalProtocol().modalClient as never, control) as Record<string, (request: unknown, options?: unknown) => Promise<{ jwt: string }>>;
      const metadata = new Metadata({ "x-modal-token-id": server.tokenId, "x-modal-token-secret": server.tokenSecret });
      const access = await controlClient.sandboxGetCommandRouterAccess!({ sandboxId: firstRecord!.sandboxId }, { metadata });
      const routerClient = createClient(loadModalProtocol().taskCommandRouter as never, router) as Record<string, (request: unknown, options?: unknown) => Promise<unknown>>;
      const start = (taskId: string, token: string) =>
        routerClient.taskExecStart!({ taskId, execId: "x", commandArgs: ["true"] }, { metadata: new Metadata({ authorization: `Bearer ${token}` }) });
      expect((await grpcError(start(firstRecord!.taskId, "not-a-token"))).code).toBe(Status.UNAUTHENTICATED);
      expect((await grpcError(start(secondRecord!.taskId, access.jwt))).code).toBe(Status.PERMISSION_DENIED);
      await start(firstRecord!.taskId, access.jwt);
    } finally {
      control.close();
      router.close();
    }
  });

  it("close() ends every sandbox's processes and removes its folders", async () => {
    server = await startModalServer();
    const provider = createModalSandbox({ serverUrl: server.url, tokenId: server.tokenId, tokenSecret: server.tokenSecret });
    const session = await provider.create({ taskId: "left-open" });
    const marker = `1000.${Date.now()}`;
    await session.spawn(["sleep", marker]);
    await expectEventually(() => hostProcessWithArgument(marker));
    const folders = readdirSync("/tmp").filter((name) => name.startsWith("modal-local-"));
    await server.close();
    server = undefined;
    expect(hostProcessWithArgument(marker)).toBe(false);
    for (const folder of folders) expect(existsSync(`/tmp/${folder}/sandboxes/${session.id}`)).toBe(false);
  });
});

async function expectEventually(check: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 100 && !check(); attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(check()).toBe(true);
}

function hostProcessWithArgument(marker: string): boolean {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").includes(marker)) return true;
    } catch {
      // Ended while we looked.
    }
  }
  return false;
}
