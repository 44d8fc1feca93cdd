import { randomUUID } from "node:crypto";
import { makeBranchName, validateBranchName } from "@running-agent/core";
import { JobError, JobErrorCode } from "./job-error.js";
import { STORABLE_OPTION_NAMES, type JobSpec, type SubmitJobInput } from "./job-record.js";

/** A submission checked and completed: id, branch, defaults. */
export interface PreparedSubmission {
  id: string;
  key: string | undefined;
  spec: JobSpec & { branch: string };
  labels: Record<string, string>;
  secrets: SubmitJobInput["secrets"];
  hasSecrets: boolean;
  maxAttempts: number;
  retryDelayMs: number;
  createdAt: number;
}

const allowed = new Set<string>([...STORABLE_OPTION_NAMES, "model"]);

/**
 * Checks a submission before anything is stored, and decides the branch once: every attempt of
 * the job pushes to it, so that a rerun updates the same branch and change request.
 */
export function prepareSubmission(input: SubmitJobInput): PreparedSubmission {
  const spec = input?.spec;
  if (typeof spec !== "object" || spec === null) throw invalid("submit needs { spec: { repo, task } }.");
  const unknown = Object.keys(spec).filter((name) => !allowed.has(name));
  if (unknown.length > 0) {
    throw invalid(`spec has options a store cannot keep: ${unknown.join(", ")}. Providers, callbacks and keys belong to the worker (taskDefaults); secrets go in 'secrets'.`);
  }
  if (typeof spec.repo !== "string" || spec.repo.trim() === "") throw invalid("spec.repo is empty: name the repository.");
  if (typeof spec.task !== "string" || spec.task.trim() === "") throw invalid("spec.task is empty: say what the agent should do.");
  if (spec.model !== undefined && typeof spec.model !== "string") throw invalid("spec.model must be 'provider/model'; the key stays with the worker.");
  if (input.key !== undefined && (typeof input.key !== "string" || input.key.length === 0 || input.key.length > 512)) throw invalid("key must be a string of 1 to 512 characters.");
  const maxAttempts = input.maxAttempts ?? 3;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) throw invalid("maxAttempts must be a whole number from 1 to 100.");
  const retryDelayMs = input.retryDelayMs ?? 5000;
  if (!Number.isInteger(retryDelayMs) || retryDelayMs < 0) throw invalid("retryDelayMs must be a whole number of milliseconds.");
  const labels = input.labels ?? {};
  if (Object.values(labels).some((value) => typeof value !== "string")) throw invalid("labels must be strings.");
  const secrets = input.secrets && Object.values(input.secrets).some((value) => value !== undefined) ? input.secrets : undefined;

  const id = randomUUID();
  let branch: string;
  try {
    if (spec.branch !== undefined) validateBranchName(spec.branch);
    branch = spec.branch ?? makeBranchName(spec.task, { prefix: spec.branchPrefix ?? "running-agent/", suffix: id.slice(0, 8) });
  } catch (cause) {
    throw new JobError(JobErrorCode.INVALID_JOB, (cause as Error).message, { cause });
  }
  return {
    id,
    key: input.key,
    spec: { ...spec, branch },
    labels,
    secrets,
    hasSecrets: secrets !== undefined,
    maxAttempts,
    retryDelayMs,
    createdAt: Date.now(),
  };
}

function invalid(message: string): JobError {
  return new JobError(JobErrorCode.INVALID_JOB, message);
}
