import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { awaitProcessTreeEnd } from "./process-tree.js";

/** A process's state letter from /proc (S sleeping, R running, Z zombie), or "gone". */
function stateOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return "gone";
  }
}

describe("awaitProcessTreeEnd", () => {
  it("resolves once nothing is left in the group, including a member that outlived the group's leader", async () => {
    // The leader starts a member in its group, prints its pid and exits at once.
    const leader = spawn("sh", ["-c", "sleep 1000.4242 & echo $!"], { detached: true, stdio: ["ignore", "pipe", "ignore"] });
    const [line] = (await once(leader.stdout!, "data")) as [Buffer];
    const member = Number(line.toString("utf8").trim());
    await once(leader, "exit");
    expect(["S", "R", "D"]).toContain(stateOf(member));

    await awaitProcessTreeEnd(leader);
    // Dead: gone, or a zombie until PID 1 reaps the orphan.
    expect(["gone", "Z", "X"]).toContain(stateOf(member));
  });

  it("returns at once for a group that is already empty, or a child that never started", async () => {
    const done = spawn("true", [], { detached: true, stdio: "ignore" });
    await once(done, "exit");
    await awaitProcessTreeEnd(done, 60_000);
    const never = spawn("/no/such/binary", [], { detached: true, stdio: "ignore" });
    await once(never, "error");
    await awaitProcessTreeEnd(never, 60_000);
  });
});
