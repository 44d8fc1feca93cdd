#!/usr/bin/env bash
# The README's demo command: the whole loop offline (local sandbox under bubblewrap, local Git
# host, scripted model), or against Gemini when GEMINI_API_KEY is set.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNNING_AGENT_SETUP=minimal bash scripts/setup.sh
exec pnpm --silent --filter @running-agent/example-demo run demo "$@"
