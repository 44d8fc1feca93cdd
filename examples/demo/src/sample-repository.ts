import { createTestRepository, type TestRepository } from "@running-agent/core/offline";

/** The files of a small TypeScript project the demo hands to the agent. */
export const SAMPLE_FILES: Record<string, string> = {
  "package.json": `${JSON.stringify({ name: "sample-math", version: "1.0.0", type: "module", scripts: { test: "node --test" } }, null, 2)}\n`,
  "tsconfig.json": `${JSON.stringify({ compilerOptions: { strict: true, module: "NodeNext", target: "ES2022" } }, null, 2)}\n`,
  "README.md": "# sample-math\n\nSmall math helpers.\n",
  "src/math.ts": "/** Adds two numbers. */\nexport function add(a: number, b: number): number {\n  return a + b;\n}\n",
};

/** A bare repository with one commit of {@link SAMPLE_FILES} on `main`. */
export function createSampleRepository(): Promise<TestRepository> {
  return createTestRepository(SAMPLE_FILES, { name: "sample-math.git" });
}
