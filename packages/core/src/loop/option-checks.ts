import { agentError, ErrorCode, type RunningAgentError } from "../errors.js";
import { MIN_SECRET_LENGTH } from "../redactor.js";
import type { GitIdentity } from "../run-options.js";

/**
 * The shape checks of `runAgentTask`'s options, one rule per kind of value. Messages name the
 * option, what it must be and the type it was; string values are never echoed (they may be secrets).
 */

/** The longest delay a Node.js timer can hold (2^31-1 ms, about 24.8 days); larger ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

// Control characters other than tab, line feed and carriage return.
// eslint-disable-next-line no-control-regex
const CONTROL_EXCEPT_WHITESPACE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
// eslint-disable-next-line no-control-regex
const ANY_CONTROL = /[\x00-\x1f\x7f]/;
const EMAIL = /^[^\s<>@]+@[^\s<>@]+$/;
const MAX_IDENTITY_LENGTH = 256;
const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** `a string`, `a number (42)`, `null`, `an array`, …: what a wrong value was, without echoing a string. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string":
      return value === "" ? "an empty string" : "a string";
    case "number":
      return `the number ${String(value)}`;
    case "bigint":
      return "a bigint";
    case "boolean":
      return `the boolean ${String(value)}`;
    case "undefined":
      return "undefined";
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
    default:
      return "an object";
  }
}

/** The INVALID_OPTIONS error for `name`, which must be `expected` and was `value`. */
export function invalidOption(name: string, expected: string, value: unknown, code: ErrorCode = ErrorCode.INVALID_OPTIONS): RunningAgentError {
  return agentError(code, `${name} must be ${expected}, not ${describeValue(value)}.`, { phase: "validate", details: { option: name } });
}

/** A plain object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Optional boolean. */
export function checkBoolean(name: string, value: unknown): boolean | undefined {
  if (value !== undefined && typeof value !== "boolean") throw invalidOption(name, "true or false", value);
  return value;
}

/** Optional delay in ms: a positive number a timer can hold. */
export function checkMilliseconds(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS) {
    throw invalidOption(name, `a number of milliseconds from 1 to ${MAX_TIMER_MS} (about 24.8 days)`, value);
  }
  return value;
}

/** Optional positive integer up to `max`. */
export function checkPositiveInteger(name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw invalidOption(name, `a whole number from 1 to ${max}`, value);
  }
  return value;
}

/** Optional one-line text: a string, not blank, no control character, at most `maxLength` characters. */
export function checkLine(name: string, value: unknown, maxLength: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw invalidOption(name, "a string", value);
  if (value.trim() === "") throw agentError(ErrorCode.INVALID_OPTIONS, `${name} is blank; leave it out to get the default, or give a text.`, { phase: "validate", details: { option: name } });
  if (ANY_CONTROL.test(value)) throw agentError(ErrorCode.INVALID_OPTIONS, `${name} contains a control character (such as a line break or NUL); it must be one line of text.`, { phase: "validate", details: { option: name } });
  if (value.length > maxLength) throw agentError(ErrorCode.INVALID_OPTIONS, `${name} is ${value.length} characters long; the limit is ${maxLength}.`, { phase: "validate", details: { option: name } });
  return value;
}

/** Optional multi-line text: tabs and line breaks allowed, other control characters not. */
export function checkText(name: string, value: unknown, maxLength: number, code: ErrorCode = ErrorCode.INVALID_OPTIONS): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw invalidOption(name, "a string", value, code);
  if (CONTROL_EXCEPT_WHITESPACE.test(value)) {
    throw agentError(code, `${name} contains a control character (such as NUL or ESC); only text, tabs and line breaks are allowed.`, { phase: "validate", details: { option: name } });
  }
  if (value.length > maxLength) throw agentError(code, `${name} is ${value.length} characters long; the limit is ${maxLength}.`, { phase: "validate", details: { option: name } });
  return value;
}

/** Optional list of one-line strings. */
export function checkLineList(name: string, value: unknown, maxLength: number, maxItems = 100): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw invalidOption(name, "an array of strings", value);
  if (value.length > maxItems) throw agentError(ErrorCode.INVALID_OPTIONS, `${name} has ${value.length} items; the limit is ${maxItems}.`, { phase: "validate", details: { option: name } });
  return value.map((item, index) => checkLine(`${name}[${index}]`, item, maxLength)!);
}

/** A commit identity as git writes it: a one-line name without `<`/`>`, and a plain address. */
export function checkIdentity(name: string, value: unknown): GitIdentity {
  const expected = "{ name, email } with a one-line name (no < or >) and an address like bot@example.com";
  if (!isPlainObject(value)) throw invalidOption(name, expected, value);
  const identityName = value.name;
  const email = value.email;
  if (typeof identityName !== "string") throw invalidOption(`${name}.name`, "a string", identityName);
  if (typeof email !== "string") throw invalidOption(`${name}.email`, "a string", email);
  const problem =
    identityName.trim() === ""
      ? `${name}.name is blank`
      : ANY_CONTROL.test(identityName)
        ? `${name}.name contains a control character (such as a line break or NUL)`
        : /[<>]/.test(identityName)
          ? `${name}.name contains < or >`
          : identityName.length > MAX_IDENTITY_LENGTH
            ? `${name}.name is longer than ${MAX_IDENTITY_LENGTH} characters`
            : ANY_CONTROL.test(email) || !EMAIL.test(email)
              ? `${name}.email is not a plain address like bot@example.com`
              : email.length > MAX_IDENTITY_LENGTH
                ? `${name}.email is longer than ${MAX_IDENTITY_LENGTH} characters`
                : undefined;
  if (problem) throw agentError(ErrorCode.INVALID_OPTIONS, `${problem}; ${name} must be ${expected}.`, { phase: "validate", details: { option: name } });
  return { name: identityName.trim(), email };
}

/** Optional task id: it becomes part of branch and folder names, so letters, digits, `.`, `_`, `-` only. */
export function checkTaskId(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const expected = "1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'";
  if (typeof value !== "string") throw invalidOption("taskId", expected, value);
  if (!TASK_ID.test(value) || value.includes("..")) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `taskId must be ${expected}: it is used in branch and folder names.`, { phase: "validate", details: { option: "taskId" } });
  }
  return value;
}

/** Optional list of extra secrets to redact; each long enough to redact without hitting ordinary words. */
export function checkSecrets(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalidOption("secrets", "an array of strings", value);
  return value.map((secret, index) => {
    if (typeof secret !== "string") throw invalidOption(`secrets[${index}]`, "a string", secret);
    if (secret.length < MIN_SECRET_LENGTH) {
      throw agentError(
        ErrorCode.INVALID_OPTIONS,
        `secrets[${index}] is shorter than ${MIN_SECRET_LENGTH} characters: it cannot be redacted without redacting ordinary words. Pass the whole secret.`,
        { phase: "validate", details: { option: `secrets[${index}]` } },
      );
    }
    return secret;
  });
}

/** Optional function. */
export function checkFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "function") throw invalidOption(name, "a function", value);
}

/** Optional AbortSignal (anything with `aborted` and `addEventListener`, as signals from other realms are). */
export function checkSignal(value: unknown): void {
  if (value === undefined) return;
  const signal = value as Partial<AbortSignal> | null;
  if (typeof signal !== "object" || signal === null || typeof signal.aborted !== "boolean" || typeof signal.addEventListener !== "function") {
    throw invalidOption("signal", "an AbortSignal", value);
  }
}
