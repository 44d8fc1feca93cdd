import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";

/**
 * Points TMPDIR at a fresh folder for the tests of the calling file and removes it afterwards, so
 * that a check that nothing is left in the temp folder sees only this file's folders (other test
 * runs on the machine make and remove theirs at the same time).
 */
export function usePrivateTmpdir(prefix: string): void {
  const original = process.env.TMPDIR;
  let folder: string | undefined;
  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), prefix));
    process.env.TMPDIR = folder;
  });
  afterAll(() => {
    if (original === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = original;
    if (folder) rmSync(folder, { recursive: true, force: true });
  });
}
