/** A .npy file (or byte sequence) that minductor cannot read or write; the message names the source. */
export class NpyError extends Error {
  override readonly name = "NpyError";

  constructor(
    readonly source: string,
    readonly problem: string,
  ) {
    super(`${source}: ${problem}`);
  }
}
