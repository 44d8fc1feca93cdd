/** `running-agent --help`. */
export const MAIN_HELP = `running-agent: run a coding agent on a repository and come back with a pull request.

Usage:
  running-agent run --repo <url|path> --task "<what to do>" [options]
  running-agent run --help       the options of run
  running-agent --version

Progress goes to stderr, the result (pull request, branch, changes) to stdout.
Exit codes: 0 pull request opened, 2 no changes, 1 failure, 64 usage error, 130 cancelled (SIGINT),
143 stopped (SIGTERM).
`;

/** `running-agent run --help`. */
export const RUN_HELP = `Usage: running-agent run --repo <url|path> --task "<what to do>" [options]

Clones the repository, runs the OpenCode agent on the task in a sandbox, commits the
changes on a new branch, pushes it and opens a pull request.

Required:
  --repo <url|path>        an https:// GitHub URL, or a local path or file:// URL
  --task <text>            what the agent should do, in plain words

Git:
  --base <branch>          branch to start from and open the pull request into (default: the repo's default)
  --branch <name>          the new branch's name (default: running-agent/<task slug>-<id>)
  --title <text>           the pull request's title (default: from the task)
  --draft                  open the pull request as a draft
  --label <name>           add a label (repeatable)
  --reviewer <login>       request a review (repeatable)
  --github-token <token>   token for GitHub repos (default: GITHUB_TOKEN; prefer the variable,
                           a flag is visible to other users of this machine)
  --github-api-url <url>   GitHub Enterprise Server's API, e.g. https://ghe.example.com/api/v3
  --gitlab-token <token>   token for GitLab repos (default: GITLAB_TOKEN; prefer the variable)
  --gitlab-url <url>       a self-managed GitLab, e.g. https://git.example.com/gitlab; repos on
                           gitlab.com or a host named gitlab.* use GitLab without it

Sandbox:
  --sandbox <kind>         local (default), docker or modal; docker and modal need
                           @running-agent/sandbox-docker or @running-agent/sandbox-modal installed
  --unisolated             local sandbox without bubblewrap (the agent can reach all your files)
  --model-proxy            keep the model's API key on this machine: the sandbox gets a run token and
                           a proxy on the host adds the key (the default for the local and the docker
                           sandbox, whose network goes through the host's egress proxy)
  --pool                   open the sandbox through a one-sandbox pool started at once, so that OpenCode
                           starts and warms up while the task is checked (the pool closes with the run)
  --image <name>           image for the docker or modal sandbox
  --network <name>         the docker sandbox's network: bridge (default), host, none or a network's name
  --setup <command>        run in the sandbox before the agent, e.g. "npm ci" (repeatable)
  --prepared-cache <dir>   local sandbox: keep the workspace after --setup in <dir>; a later run on
                           the same commit and commands starts from it (the setup does not run again),
                           and one on a later commit too when no manifest or lockfile changed (it
                           brings in what changed); with --pool the pooled sandbox starts from it
  --check <name=command>   run in the sandbox after the agent, e.g. "test=npm test" (repeatable);
                           a failure goes back to the agent; --check auto detects the usual ones
  --max-fix-rounds <n>     how often failed checks go back to the agent: 0 to 10 (default 2)
  --on-checks-failed <p>   checks still failing: draft (default, a draft PR that says so), fail
                           (push nothing, exit 1) or open
  --timeout <duration>     the longest the whole task may take: 90s, 20m, 1h (default 30m)

Model:
  --model <provider/model> google/gemini-2.5-pro (default), anthropic/..., openai/...,
                           openai-compatible/<model>
  --model-base-url <url>   the API's base URL (required for openai-compatible)
                           (any OpenAI-compatible server: vLLM, Ollama, LiteLLM, llama.cpp...)
                           Keys come from GEMINI_API_KEY, ANTHROPIC_API_KEY, OPENAI_API_KEY or
                           OPENAI_COMPATIBLE_API_KEY.
  --scripted-model         no real model and no key: a scripted one on 127.0.0.1 writes the task
                           into RUNNING_AGENT_TASK.md (the whole loop offline, as the demo does)

Output:
  Progress goes to stderr; the result (pull request, branch, changes, summary) to stdout, so
  \`url=$(running-agent run ... | sed -n 's/^Pull request: //p')\` works.
  --json                   print the result as JSON on stdout and every event as a JSON line on stderr
  -h, --help               this help

Exit codes: 0 pull request opened, 2 no changes, 1 failure (error code and message on stderr, once),
64 usage error, 130 cancelled (SIGINT, Ctrl+C), 143 stopped (SIGTERM). Both signals tear the sandbox
down first; a second one stops without waiting for cleanup.
`;
