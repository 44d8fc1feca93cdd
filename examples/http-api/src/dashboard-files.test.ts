import { request as httpRequest } from "node:http";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApiServer, type ApiServer } from "./api-server.js";
import { createGatedTaskRunner } from "./gated-task-runner.js";

const SECRET = "outside-the-dashboard-folder-7f3a";
const INDEX = '<!doctype html><title>Dashboard</title><script type="module" src="/assets/index-Bx3k9QzA.js"></script>';

/** A request with the path sent byte for byte (fetch would resolve dot segments before sending). */
function rawRequest(port: number, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: options.headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode!, headers: response.headers, body }));
    });
    request.on("error", reject);
    request.end();
  });
}

describe("the API serving the built dashboard", () => {
  let folder: string;
  let dist: string;
  let server: ApiServer;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "http-api-dashboard-"));
    dist = join(folder, "dist");
    await mkdir(join(dist, "assets"), { recursive: true });
    await writeFile(join(dist, "index.html"), INDEX);
    await writeFile(join(dist, "assets", "index-Bx3k9QzA.js"), "console.log('dashboard');\n");
    await writeFile(join(dist, "assets", "index-Q1w2e3R4.css"), "body { margin: 0 }\n");
    // Files that must never shadow an endpoint or leak: a page named like an endpoint, a dotfile, a file beside the folder.
    await writeFile(join(dist, "health.html"), "<p>not the health endpoint</p>");
    await writeFile(join(dist, ".env"), `TOKEN=${SECRET}\n`);
    await writeFile(join(folder, "outside.txt"), SECRET);
    server = await startApiServer({ databasePath: join(folder, "jobs.db"), runTask: createGatedTaskRunner().runTask, dashboardDirectory: dist });
  });

  afterAll(async () => {
    await server?.close();
    await rm(folder, { recursive: true, force: true });
  });

  it("serves index.html at / and the assets with their content types; hashed assets are cached for good, the page is revalidated", async () => {
    const page = await rawRequest(server.port, "/");
    expect(page).toMatchObject({ status: 200, body: INDEX });
    expect(page.headers["content-type"]).toBe("text/html;charset=utf-8");
    expect(page.headers["cache-control"]).toBe("no-cache");
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
    expect((await rawRequest(server.port, "/", { headers: { "if-none-match": String(page.headers.etag) } })).status).toBe(304);

    const script = await rawRequest(server.port, "/assets/index-Bx3k9QzA.js");
    expect(script).toMatchObject({ status: 200, body: "console.log('dashboard');\n" });
    expect(script.headers["content-type"]).toBe("text/javascript");
    expect(script.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    const style = await rawRequest(server.port, "/assets/index-Q1w2e3R4.css?v=1");
    expect(style.headers["content-type"]).toBe("text/css");

    const head = await rawRequest(server.port, "/index.html", { method: "HEAD" });
    expect(head).toMatchObject({ status: 200, body: "" });
    expect(head.headers["content-length"]).toBe(String(INDEX.length));
  });

  it("never shadows an endpoint, and answers unknown paths and other methods with the API's JSON 404", async () => {
    const health = await rawRequest(server.port, "/health");
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: "ok" });
    expect(JSON.parse((await rawRequest(server.port, "/jobs")).body)).toEqual({ jobs: [], next_offset: null });

    const missing = await rawRequest(server.port, "/assets/missing.js");
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ error: { code: "not_found" } });
    expect((await rawRequest(server.port, "/", { method: "POST" })).status).toBe(404);
  });

  it.each([
    "/../outside.txt",
    "/%2e%2e/outside.txt",
    "/%2E%2E%2Foutside.txt",
    "/assets/%2e%2e/%2e%2e/outside.txt",
    "/assets/..%5c..%5coutside.txt",
    "/..%2foutside.txt",
    "//FOLDER/outside.txt",
    "/%2FFOLDER%2Foutside.txt",
    "http://127.0.0.1/../outside.txt",
    "/.env",
    "/%2eenv",
    "/assets/../.env",
  ])("refuses %s without reading outside the folder or a dotfile", async (template) => {
    const response = await rawRequest(server.port, template.replaceAll("FOLDER", folder.slice(1)));
    expect(response.status).toBe(404);
    expect(response.body).not.toContain(SECRET);
  });

  it("serves nothing at / when no dashboard folder is given", async () => {
    await using bare = await startApiServer({ databasePath: join(folder, "bare.db"), runTask: createGatedTaskRunner().runTask });
    const response = await rawRequest(bare.port, "/");
    expect(response.status).toBe(404);
    expect(JSON.parse(response.body)).toMatchObject({ error: { code: "not_found" } });
  });
});
