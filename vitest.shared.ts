import { mergeConfig, type ViteUserConfig } from "vitest/config";

/**
 * The vitest config of every workspace package and example: workspace packages are read from
 * source (their `source` export condition), merged with the package's own options.
 */
export function defineWorkspaceVitestConfig(config: ViteUserConfig): ViteUserConfig {
  return mergeConfig({ resolve: { conditions: ["source"] }, ssr: { resolve: { conditions: ["source"] } } } satisfies ViteUserConfig, config);
}
