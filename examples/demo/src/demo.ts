/**
 * The whole loop on one machine: a sample repository, the local sandbox, the local Git host,
 * and a scripted model (or Gemini when GEMINI_API_KEY is set). Prints progress as it goes and
 * ends with the branch, the change request and the diff.
 */
import {
  RunningAgentError,
  createLocalGitHost,
  createLocalSandbox,
  runAgentTask,
  type AgentTaskEvent,
  type ModelConfig,
} from "@running-agent/core";
import { startScriptedModelServer } from "@running-agent/core/offline";
import { createSampleRepository } from "./sample-repository.js";
import { DEMO_CHECKS, DEMO_TASK, demoScript } from "./demo-script.js";

const keep = process.argv.includes("--keep");
const useGemini = Boolean(process.env.GEMINI_API_KEY) && !process.argv.includes("--scripted");

function describe(event: AgentTaskEvent): string | undefined {
  switch (event.type) {
    case "phase":
      if (event.status === "started") return `▸ ${event.phase}`;
      if (event.status === "skipped") return `  ${event.phase} skipped`;
      if (event.status === "failed") return `✗ ${event.phase} failed: ${event.error?.message}`;
      return `  ${event.phase} done in ${Math.round(event.durationMs ?? 0)} ms`;
    case "sandbox":
      return `  sandbox ${event.provider} ${event.sandboxId} (${event.isolated ? "isolated" : "NOT isolated"})`;
    case "warning":
      return `  ! ${event.message}`;
    case "agent.tool":
      return event.status === "completed" || event.status === "error" ? `  agent ${event.tool} ${event.title ?? ""} → ${event.status}` : undefined;
    case "agent.file":
      return `  agent edited ${event.path}`;
    case "agent.retry":
      return `  model call failed, retry ${event.attempt}: ${event.message}`;
    case "changes":
      return `  changes: ${event.files.map((file) => `${file.status} ${file.path}`).join(", ") || "none"}`;
    case "branch.pushed":
      return `  pushed ${event.branch} at ${event.commit.slice(0, 12)}`;
    case "check.completed":
      return `  check ${event.name} ${event.passed ? "passed" : event.timedOut ? "timed out" : `failed (exit code ${event.exitCode})`} in ${Math.round(event.durationMs)} ms`;
    case "fix-round":
      return `  checks failed (${event.failing.join(", ")}): fix round ${event.round} of ${event.maxFixRounds}`;
    case "change-request":
      return `  change request #${event.number} ${event.created ? "opened" : "updated"}`;
    case "log":
      return event.level === "debug" ? undefined : `  ${event.message}`;
    default:
      return undefined;
  }
}

async function main(): Promise<number> {
  const sample = await createSampleRepository();
  const repo = sample.path;
  const modelServer = useGemini ? undefined : await startScriptedModelServer({ script: demoScript() });
  const model: ModelConfig = modelServer
    ? { provider: "openai-compatible", model: "scripted-demo", baseURL: modelServer.url, apiKey: "demo-key" }
    : { provider: "google", model: "gemini-2.5-pro" };
  const gitHost = createLocalGitHost();
  console.log("Running Agent demo: the whole loop, offline");
  console.log(`  repository: ${repo} (a small TypeScript project, made just now)`);
  console.log(`  model:      ${modelServer ? `scripted, OpenAI-compatible on ${modelServer.url}` : "Google gemini-2.5-pro (GEMINI_API_KEY)"}`);
  console.log(`  task:       ${DEMO_TASK}\n`);
  try {
    const result = await runAgentTask({
      repo,
      task: DEMO_TASK,
      model,
      sandbox: createLocalSandbox(),
      gitHost,
      // Verified before the change request opens: a failure would go back to the agent.
      checks: DEMO_CHECKS,
      // A real model that cannot be reached is retried by OpenCode without end; a demo should give up.
      agentTimeoutMs: 10 * 60_000,
      onEvent: (event) => {
        const line = describe(event);
        if (line) console.log(line);
      },
    });
    console.log(`\nStatus: ${result.status}`);
    if (result.status === "no_changes") return 2;
    console.log(`Branch: ${result.branch} (${result.commit})`);
    const changeRequest = result.pullRequest!;
    console.log(`Change request #${changeRequest.number}: ${changeRequest.url}`);
    console.log(`  ${changeRequest.head} → ${changeRequest.base}: ${changeRequest.title}`);
    console.log(`  stored: ${(await gitHost.listChangeRequests(repo)).length} change request(s) in ${repo}`);
    console.log(`Tokens: ${result.usage.inputTokens} in, ${result.usage.outputTokens} out`);
    console.log("\nTimings (ms):");
    for (const [phase, ms] of Object.entries(result.timings)) console.log(`  ${phase.padEnd(13)} ${Math.round(ms ?? 0)}`);
    const diff = await sample.git("diff", `${result.baseBranch}...${result.branch}`);
    console.log(`\nDiff ${result.baseBranch}...${result.branch}:\n${diff}`);
    return 0;
  } catch (error) {
    if (RunningAgentError.isInstance(error)) console.error(`\nFailed in ${error.phase ?? "?"}: [${error.code}] ${error.message}`);
    else console.error(error);
    return 1;
  } finally {
    await modelServer?.close();
    if (keep) console.log(`Kept the sample repository in ${sample.root}`);
    else await sample.remove();
  }
}

process.exitCode = await main();
