/** A mistake on the command line. The CLI prints its message with a hint and exits with 64. */
export class UsageError extends Error {
  /** Always `"UsageError"`. */
  override readonly name = "UsageError";
}
