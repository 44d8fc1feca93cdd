import { basename, join } from "node:path";
import { mergeConfig, type ViteUserConfig } from "vitest/config";

/**
 * The vitest config of every workspace package and example: workspace packages are read from
 * source (their `source` export condition), merged with the package's own options.
 * With RUNNING_AGENT_TEST_REPORTS set to a folder, each package also writes a JSON report there,
 * which `scripts/test.sh` sums into one closing line.
 */
export function defineWorkspaceVitestConfig(config: ViteUserConfig): ViteUserConfig {
  const reports = process.env.RUNNING_AGENT_TEST_REPORTS;
  const base: ViteUserConfig = {
    resolve: { conditions: ["source"] },
    ssr: { resolve: { conditions: ["source"] } },
    ...(reports ? { test: { reporters: ["default", ["json", { outputFile: join(reports, `${basename(process.cwd())}.json`) }]] } } : {}),
  };
  return mergeConfig(base, config);
}
