const MAX_TITLE_LENGTH = 72;

/** A one-line title from the task text: its first line, cut at a word boundary. */
export function taskTitle(task: string): string {
  const firstLine = task.trim().split(/\r?\n/, 1)[0]!.trim().replace(/\s+/g, " ");
  if (firstLine.length <= MAX_TITLE_LENGTH) return firstLine;
  const cut = firstLine.slice(0, MAX_TITLE_LENGTH - 1);
  const lastSpace = cut.lastIndexOf(" ");
  return `${(lastSpace > 40 ? cut.slice(0, lastSpace) : cut).trimEnd()}…`;
}
