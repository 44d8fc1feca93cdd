/** One file the agent changed, as committed. */
export interface ChangedFile {
  /** Path relative to the repository root, with forward slashes. */
  path: string;
  /** What happened to the file. */
  status: "added" | "modified" | "deleted" | "renamed";
  /** For renames: the old path. */
  previousPath?: string;
  /** True when the content is not text, or is over 16 MiB (git then neither reads nor diffs it whole). */
  binary: boolean;
  /** Git file mode after the change: 100644, 100755 or 120000 (symlink). Undefined for deletions. */
  mode?: "100644" | "100755" | "120000";
  /** Git file mode before, when the file existed. */
  previousMode?: "100644" | "100755" | "120000";
  /** Lines added and removed (0 for binary files). */
  additions: number;
  /** Lines removed (0 for binary files). */
  deletions: number;
}
