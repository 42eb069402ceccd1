/** A graph the kernel templates cannot be instantiated for; `field` names the graph field at fault. */
export class KernelRenderError extends Error {
  readonly stage = "codegen";
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`KernelRenderError at ${field}: ${problem}`);
    this.name = "KernelRenderError";
  }
}
