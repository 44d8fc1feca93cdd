import { execFile, execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

/** A PostgreSQL cluster of its own for a test run: initdb in a temp folder, a loopback port, stopped by {@link PostgresCluster.stop}. */
export interface PostgresCluster extends AsyncDisposable {
  /** `postgresql://postgres@127.0.0.1:<port>/postgres`. */
  readonly connectionString: string;
  /** The loopback TCP port the server listens on (a free one, chosen at start; kept across `restart()`). */
  readonly port: number;
  /** The data folder (to read its raw bytes). */
  readonly dataDirectory: string;
  /** Every byte the server has written (data files after a checkpoint, and the WAL): what a secret must not be found in. */
  rawBytes(): Promise<Buffer>;
  /** A new, empty database in the cluster; its connection string. */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server (fast shutdown) and starts it again on the same port; connections drop meanwhile. */
  restart(): Promise<void>;
  /** Stops the server and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** Where Debian puts the server binaries: `RUNNING_AGENT_POSTGRES_BIN`, else the newest of /usr/lib/postgresql/<version>/bin. */
export function postgresBinDirectory(): string | undefined {
  if (process.env.RUNNING_AGENT_POSTGRES_BIN) return process.env.RUNNING_AGENT_POSTGRES_BIN;
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => existsSync(join(root, name, "bin", "pg_ctl")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], "bin") : undefined;
}

/**
 * Starts a throwaway cluster: `initdb` as the `postgres` user (PostgreSQL refuses root) in a temp
 * folder, `pg_ctl start` on a free loopback port with the socket in that folder. The server is
 * stopped when the test process exits, whatever happened.
 */
export async function startPostgresCluster(options: { settings?: Record<string, string> } = {}): Promise<PostgresCluster> {
  const bin = postgresBinDirectory();
  if (!bin) throw new Error("PostgreSQL is not installed: apt-get install -y postgresql (scripts/setup.sh does), or set RUNNING_AGENT_POSTGRES_BIN.");
  const root = await mkdtemp(join(tmpdir(), "running-agent-postgres-"));
  const dataDirectory = join(root, "data");
  const socketDirectory = join(root, "socket");
  await mkdir(socketDirectory);
  const asPostgres = process.getuid?.() === 0;
  if (asPostgres) {
    const { uid, gid } = postgresIds();
    await chown(root, uid, gid);
    await chown(socketDirectory, uid, gid);
  }
  const command = (program: string, args: string[]): [string, string[]] => (asPostgres ? ["runuser", ["-u", "postgres", "--", join(bin, program), ...args]] : [join(bin, program), args]);
  const port = await freePort();
  const settings = { listen_addresses: "127.0.0.1", fsync: "off", ...options.settings };
  const serverOptions = [`-k ${socketDirectory}`, `-p ${port}`, ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`)].join(" ");
  const pgCtl = (...args: string[]) => run(...command("pg_ctl", ["-D", dataDirectory, ...args]));
  let running = false;
  const stopSync = () => {
    if (!running) return;
    try {
      execFileSync(...command("pg_ctl", ["-D", dataDirectory, "-m", "immediate", "-w", "stop"]), { stdio: "ignore" });
    } catch {
      // already stopped
    }
  };
  process.once("exit", stopSync);
  try {
    await run(...command("initdb", ["-D", dataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]));
    await pgCtl("-o", serverOptions, "-l", join(root, "server.log"), "-w", "start");
    running = true;
  } catch (error) {
    process.off("exit", stopSync);
    await rm(root, { recursive: true, force: true });
    throw error;
  }
  const connectionString = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  let stopped = false;
  let databases = 0;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off("exit", stopSync);
    if (running) await pgCtl("-m", "fast", "-w", "stop").catch(() => stopSync());
    running = false;
    await rm(root, { recursive: true, force: true });
  };
  return {
    connectionString,
    port,
    dataDirectory,
    async createDatabase(name = `test_${process.pid}_${++databases}`) {
      const client = new pg.Client({ connectionString });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
      return `postgresql://postgres@127.0.0.1:${port}/${encodeURIComponent(name)}`;
    },
    async rawBytes() {
      const client = new pg.Client({ connectionString });
      await client.connect();
      try {
        await client.query("CHECKPOINT");
      } finally {
        await client.end();
      }
      return Buffer.concat(await readTree(dataDirectory));
    },
    async restart() {
      await pgCtl("-m", "fast", "-w", "stop");
      running = false;
      await pgCtl("-o", serverOptions, "-l", join(root, "server.log"), "-w", "start");
      running = true;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

async function readTree(folder: string): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) chunks.push(...(await readTree(path)));
    else if (entry.isFile()) chunks.push(await readFile(path));
  }
  return chunks;
}

function postgresIds(): { uid: number; gid: number } {
  const line = execFileSync("getent", ["passwd", "postgres"], { encoding: "utf8" }).trim();
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}
