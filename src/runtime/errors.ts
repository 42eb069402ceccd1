/**
 * The runtime's failures. Input problems are caught in TypeScript before any native call, so a kernel never
 * sees an argument it could read out of bounds; the kernel itself can only report through `md_args.status`.
 */

/** A runtime input (tensor, buffer, page table, block mask or option) that does not fit the compiled graph. */
export class InputError extends Error {
  readonly stage = "input";
  /** The top-level input at fault: `query`, `buffers.slopes`, `pageTable`, `blockMask`, `partitionSize`, ... */
  readonly field: string;

  /** `message` names the precise place and the problem, e.g. `pageTable[1][3] = 17 is not a page of ...`. */
  constructor(field: string, message: string) {
    super(message);
    this.name = "InputError";
    this.field = field;
  }
}

/** A kernel call that returned a non-zero `md_args.status`: its outputs are not valid. */
export class KernelRuntimeError extends Error {
  readonly stage = "kernel";

  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "KernelRuntimeError";
  }
}

/** A shared library that cannot serve as a minductor kernel (missing symbol, other ABI version). */
export class LibraryError extends Error {
  readonly stage = "load";

  constructor(
    readonly libraryPath: string,
    message: string,
  ) {
    super(message);
    this.name = "LibraryError";
  }
}

/** Status 1 of docs/abi.md: the call went on safely, but its outputs are not what the mods describe. */
export const BUFFER_OUT_OF_RANGE_STATUS = 1;
/** Status 2: a native sanity check failed; inputs are validated before every call, so this is a bug. */
export const NATIVE_CHECK_STATUS = 2;
/** Status 3: the kernel could not allocate its per-call scratch memory. */
export const NO_MEMORY_STATUS = 3;
/** Status 4: a quantized key/value scale the kernel read was negative or not finite (checked there for large tensors). */
export const BAD_SCALE_STATUS = 4;
/** Status 4's message where the bad scale cannot be named (runKernel names it: validateInputs.ts, badScaleError). */
export const BAD_SCALE_MESSAGE =
  "keyScale or valueScale holds a negative, infinite or NaN scale where the kernel read it; scales must be finite and non-negative";

/** Throws the KernelRuntimeError for a non-zero `md_args.status` returned by `entry`. */
export function throwOnStatus(status: number, entry: string): void {
  if (status === 0) return;
  if (status === BUFFER_OUT_OF_RANGE_STATUS) {
    throw new KernelRuntimeError(status, "a mod indexed a captured buffer out of range");
  }
  if (status === NATIVE_CHECK_STATUS) {
    throw new KernelRuntimeError(
      status,
      `${entry} rejected its arguments in a native sanity check (status 2); the runtime had validated them, so this is a bug`,
    );
  }
  if (status === NO_MEMORY_STATUS) {
    throw new KernelRuntimeError(status, `${entry} could not allocate its scratch memory (status 3)`);
  }
  if (status === BAD_SCALE_STATUS) {
    throw new InputError("keyScale", BAD_SCALE_MESSAGE);
  }
  throw new KernelRuntimeError(status, `${entry} failed with unknown status ${status}`);
}
