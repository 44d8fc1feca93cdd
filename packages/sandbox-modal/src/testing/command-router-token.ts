import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Signs and checks the short-lived JWTs (HS256) the local server hands out for its task command
 * router, as Modal does in `commandRouterAccess`. The SDK reads only the `exp` claim.
 */
export class CommandRouterTokens {
  private readonly key = randomBytes(32);

  /** A token for one task, valid for `lifetimeSeconds`. */
  issue(taskId: string, lifetimeSeconds = 3600): string {
    const header = encode({ alg: "HS256", typ: "JWT" });
    const payload = encode({ task_id: taskId, exp: Math.floor(Date.now() / 1000) + lifetimeSeconds });
    return `${header}.${payload}.${this.sign(`${header}.${payload}`)}`;
  }

  /** The task id a valid, unexpired token was issued for; undefined otherwise. */
  verify(token: string): string | undefined {
    const [header, payload, signature] = token.split(".");
    if (!header || !payload || !signature) return undefined;
    const expected = Buffer.from(this.sign(`${header}.${payload}`));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { task_id?: string; exp?: number };
    if (typeof claims.exp !== "number" || claims.exp * 1000 < Date.now()) return undefined;
    return claims.task_id;
  }

  private sign(content: string): string {
    return createHmac("sha256", this.key).update(content).digest("base64url");
  }
}

function encode(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}
