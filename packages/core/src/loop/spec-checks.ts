import { agentError, ErrorCode, type RunningAgentError } from "../errors.js";
import { describeValue, isPlainObject } from "./option-checks.js";
import type { GitHost } from "../spec/git-host-spec.js";
import type { SandboxSession } from "../spec/sandbox-spec.js";

/**
 * Guards at the two seams: what a Git host or a sandbox session hands back is checked against
 * its spec where the loop takes it, so that an adapter answering `null` or `{}` fails with a
 * SPEC_VIOLATION that names the member, never with a TypeError from deep inside the loop.
 */

function violation(seam: string, member: string, expected: string, value: unknown): RunningAgentError {
  return agentError(ErrorCode.SPEC_VIOLATION, `${seam} broke its spec: ${member} gave ${describeValue(value)} where ${expected} was expected. Fix or upgrade the adapter.`, {
    details: { seam, member },
  });
}

type Check = (value: unknown) => boolean;
const isString: Check = (value) => typeof value === "string";
const isNonEmptyString: Check = (value) => typeof value === "string" && value !== "";
const isBytes: Check = (value) => value instanceof Uint8Array;

/** Wraps an object so that the named methods' results are checked; every other member passes through, bound to the object. */
function withCheckedResults<T extends object>(target: T, seam: string, checks: Record<string, { expected: string; check: Check }>): T {
  return new Proxy(target, {
    get(object, property) {
      // Read on the object itself: getters that use private fields fail when `this` is the proxy.
      const value = Reflect.get(object, property);
      if (typeof value !== "function") return value;
      const rule = typeof property === "string" ? checks[property] : undefined;
      if (!rule) return value.bind(object);
      return async (...args: unknown[]) => {
        const result = await value.apply(object, args);
        if (!rule.check(result)) throw violation(seam, `${String(property)}()`, rule.expected, result);
        return result;
      };
    },
  });
}

/** The Git host with its answers checked against the GitHost spec. */
export function checkedGitHost(host: GitHost): GitHost {
  const seam = `The Git host "${String(host.hostId)}"`;
  return withCheckedResults(host, seam, {
    resolveRepository: {
      expected: "a ResolvedRepository { id, remote, defaultBranch, canPush }",
      check: (value) =>
        isPlainObject(value) && isNonEmptyString(value.id) && isNonEmptyString(value.remote) && isNonEmptyString(value.defaultBranch) && typeof value.canPush === "boolean",
    },
    branchExists: { expected: "true or false", check: (value) => typeof value === "boolean" },
    getCredentials: {
      expected: "undefined or { username, password }",
      check: (value) => value === undefined || (isPlainObject(value) && isString(value.username) && isString(value.password)),
    },
    openChangeRequest: {
      expected: "a ChangeRequest { number, url, head, base, title, body, draft, created }",
      check: (value) =>
        isPlainObject(value) &&
        typeof value.number === "number" &&
        isNonEmptyString(value.url) &&
        isString(value.head) &&
        isString(value.base) &&
        typeof value.draft === "boolean" &&
        typeof value.created === "boolean",
    },
  });
}

/** The session a provider opened, checked against the SandboxSession spec, with its answers checked as they come. */
export function checkedSession(session: unknown, providerId: string): SandboxSession {
  const seam = `The sandbox provider "${providerId}"`;
  const methods = ["exec", "spawn", "readFile", "writeFile", "putArchive", "getArchive", "exposePort", "destroy"] as const;
  const candidate = session as Partial<SandboxSession> | null;
  if (
    !isPlainObjectLike(candidate) ||
    !isNonEmptyString(candidate.id) ||
    !isNonEmptyString(candidate.workdir) ||
    !isNonEmptyString(candidate.scratchDir) ||
    methods.some((method) => typeof candidate[method] !== "function")
  ) {
    throw violation(seam, "create()", `a SandboxSession { id, workdir, scratchDir, isolated, ${methods.join(", ")} }`, session);
  }
  return withCheckedResults(candidate as SandboxSession, seam, {
    exec: {
      expected: "{ exitCode, stdout, stderr }",
      check: (value) => isPlainObject(value) && typeof value.exitCode === "number" && isString(value.stdout) && isString(value.stderr),
    },
    spawn: {
      expected: "a SandboxProcess { exited, kill }",
      check: (value) => isPlainObjectLike(value) && typeof (value as { exited?: { then?: unknown } }).exited?.then === "function" && typeof (value as { kill?: unknown }).kill === "function",
    },
    readFile: { expected: "a Uint8Array", check: isBytes },
    getArchive: { expected: "a Uint8Array", check: isBytes },
    exposePort: { expected: "an ExposedPort { url }", check: (value) => isPlainObject(value) && isNonEmptyString(value.url) && URL.canParse(value.url as string) },
    allocatePort: { expected: "a port number from 1 to 65535", check: (value) => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535 },
  });
}

// Sessions are often class instances: any non-null object counts.
function isPlainObjectLike(value: unknown): value is object {
  return typeof value === "object" && value !== null;
}
