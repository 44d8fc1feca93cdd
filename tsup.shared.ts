import { defineConfig, type Options } from "tsup";

/**
 * The build of every published package: ESM for Node 20, with declarations and source maps.
 * `options` names the package's entries and may override the rest.
 */
export function definePackageBuild(options: Options) {
  return defineConfig({ format: ["esm"], target: "node20", dts: true, sourcemap: true, clean: true, splitting: true, ...options });
}
