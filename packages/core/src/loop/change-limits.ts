import { agentError, ErrorCode } from "../errors.js";
import { DEFAULT_CHANGE_LIMITS, type ChangeLimits } from "../git/change-checks.js";

/** Checks `changeLimits` (validate phase) and fills in the defaults. */
export function checkChangeLimits(value: unknown): Required<ChangeLimits> {
  if (value === undefined) return { ...DEFAULT_CHANGE_LIMITS };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `changeLimits must be an object like { maxFileBytes, maxTotalBytes, maxFiles }, not ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}.`);
  }
  const limits = { ...DEFAULT_CHANGE_LIMITS };
  for (const name of Object.keys(value)) {
    if (!(name in DEFAULT_CHANGE_LIMITS)) throw agentError(ErrorCode.INVALID_OPTIONS, `changeLimits has no option ${JSON.stringify(name)}; use maxFileBytes, maxTotalBytes or maxFiles.`);
    const limit = (value as Record<string, unknown>)[name];
    if (limit === undefined) continue;
    if (typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 1) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `changeLimits.${name} must be a positive whole number, not ${typeof limit === "number" ? String(limit) : `a ${typeof limit}`}.`);
    }
    limits[name as keyof ChangeLimits] = limit;
  }
  return limits;
}
