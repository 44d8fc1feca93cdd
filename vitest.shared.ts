import { basename, join } from "node:path";
import { mergeConfig, type ViteUserConfig } from "vitest/config";
import { RetriedTestsReporter } from "./vitest-retry-reporter.js";

/**
 * The vitest config of every workspace package and example: workspace packages are read from
 * source (their `source` export condition), merged with the package's own options.
 * With RUNNING_AGENT_TEST_REPORTS set to a folder, each package also writes a JSON report there,
 * which `scripts/test.sh` sums into one closing line. There a failed test is retried once, and
 * each test that passed only on its retry is written to `<package>.retried.txt`, which the summary
 * names (CI accepts a retried pass only when the summary names it).
 */
export function defineWorkspaceVitestConfig(config: ViteUserConfig): ViteUserConfig {
  const reports = process.env.RUNNING_AGENT_TEST_REPORTS;
  const base: ViteUserConfig = {
    resolve: { conditions: ["source"] },
    ssr: { resolve: { conditions: ["source"] } },
    ...(reports
      ? {
          test: {
            retry: 1,
            reporters: [
              "default",
              ["json", { outputFile: join(reports, `${basename(process.cwd())}.json`) }],
              new RetriedTestsReporter(join(reports, `${basename(process.cwd())}.retried.txt`)),
            ],
          },
        }
      : {}),
  };
  return mergeConfig(base, config);
}
