import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { shortSocketPath } from "./short-socket-path.js";

describe("shortSocketPath", () => {
  it("listens on and connects to a socket whose path is longer than a socket address may be, and removes its link", async () => {
    const root = await mkdtemp(join(tmpdir(), "running-agent-socket-"));
    try {
      const deep = join(root, "a-worker-work-folder-with-a-long-name", "running-agent-session-folder-name", "system", "ports");
      await mkdir(deep, { recursive: true });
      const socketPath = join(deep, "12345.sock");
      expect(Buffer.byteLength(socketPath)).toBeGreaterThan(108);
      const listening = await shortSocketPath(socketPath);
      const server = createServer((socket) => socket.end("hello"));
      await new Promise<void>((resolve) => server.listen(listening.path, () => resolve()));
      expect((await readdir(deep)).includes("12345.sock")).toBe(true);
      const connecting = await shortSocketPath(socketPath);
      const answer = await new Promise<string>((resolve, reject) => {
        const client = connect(connecting.path);
        let text = "";
        client.on("data", (chunk) => (text += chunk.toString()));
        client.on("end", () => resolve(text));
        client.on("error", reject);
      });
      expect(answer).toBe("hello");
      // The plain path does not reach it (the address is cut to the kernel's limit): this is what the helper is for.
      await expect(new Promise((resolve, reject) => connect(socketPath).once("connect", resolve).once("error", reject))).rejects.toThrow();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const handle of [listening, connecting]) await handle.release();
      const links = (await readdir("/tmp")).filter((name) => name.startsWith("ra-sock-"));
      expect(links.filter((name) => [listening.path, connecting.path].some((path) => path.startsWith(`/tmp/${name}/`)))).toEqual([]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("leaves a short path as it is", async () => {
    const handle = await shortSocketPath("/tmp/x/egress.sock");
    expect(handle.path).toBe("/tmp/x/egress.sock");
  });
});
