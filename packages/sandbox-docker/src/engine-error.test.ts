import { describe, expect, it } from "vitest";
import { isGone } from "./engine-error.js";

/** An error shaped the way docker-modem raises it. */
const engineError = (statusCode: number, message: string) => Object.assign(new Error(`(HTTP code ${statusCode}) ${message}`), { statusCode, json: { message } });

describe("isGone", () => {
  it("reads the Engine's answers for a container that is gone or going away", () => {
    expect(isGone(engineError(404, "No such container: 039401f83866"))).toBe(true);
    expect(isGone(engineError(409, "Container 039401f83866 is not running"))).toBe(true);
    expect(isGone(engineError(409, "removal of container 039401f83866 is already in progress"))).toBe(true);
    // An exec created while an auto-removed container is going away (seen on Engine 20.10).
    expect(isGone(engineError(500, "container not running - Container 039401f83866 is not running: Removal In Progress"))).toBe(true);
  });

  it("does not take other failures for a gone container", () => {
    expect(isGone(engineError(500, "OCI runtime create failed: unable to start container process"))).toBe(false);
    expect(isGone(engineError(409, "Conflict. The container name is already in use"))).toBe(false);
    expect(isGone(Object.assign(new Error("connect ENOENT /var/run/docker.sock"), { code: "ENOENT" }))).toBe(false);
  });
});
