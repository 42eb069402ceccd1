/**
 * The block-sparse mask in PyTorch's layout, and its validation. The kernel trusts the mask completely (it
 * reads exactly the listed kv blocks), so every count and index is checked here before a call.
 */
import { InputError } from "./errors.js";

export interface BlockMask {
  /** 1 (broadcast over the batch) or B. */
  batch: number;
  /** 1 (broadcast over the query heads) or Hq. */
  heads: number;
  qBlocks: number;
  kvBlocks: number;
  qBlockSize: number;
  kvBlockSize: number;
  /** [batch, heads, qBlocks]: partial kv blocks (mask_mod evaluated) per row of blocks. */
  kvNumBlocks: Int32Array;
  /** [batch, heads, qBlocks, kvBlocks]: the first kvNumBlocks entries of each row, ascending. */
  kvIndices: Int32Array;
  /** Same shapes; full blocks skip mask_mod. Both null when there are no full blocks. */
  fullKvNumBlocks: Int32Array | null;
  fullKvIndices: Int32Array | null;
}

/** What a mask must cover for one call. */
export interface BlockMaskTarget {
  batch: number;
  heads: number;
  qLen: number;
  kvLen: number;
  qBlockSize: number;
  kvBlockSize: number;
}

/** Blocks of `blockSize` needed to cover `length` positions. */
export function blocksFor(length: number, blockSize: number): number {
  return Math.ceil(length / blockSize);
}

/** A zeroed mask of the given geometry with all four arrays allocated (what `md_build_block_mask` fills). */
export function allocateBlockMask(
  geometry: Pick<BlockMask, "batch" | "heads" | "qBlocks" | "kvBlocks" | "qBlockSize" | "kvBlockSize">,
): BlockMask {
  const rows = geometry.batch * geometry.heads * geometry.qBlocks;
  const indices = rows * geometry.kvBlocks;
  // One ArrayBuffer for the four arrays: V8 keeps a small typed array's elements on its heap and moves them out (an
  // allocation and a copy) when native code needs their address, four times per mask of a decode step otherwise.
  const memory = new ArrayBuffer(4 * (2 * rows + 2 * indices));
  return {
    ...geometry,
    kvNumBlocks: new Int32Array(memory, 0, rows),
    kvIndices: new Int32Array(memory, 4 * rows, indices),
    fullKvNumBlocks: new Int32Array(memory, 4 * (rows + indices), rows),
    fullKvIndices: new Int32Array(memory, 4 * (2 * rows + indices), indices),
  };
}

/**
 * Masks the runtime built for its own calls (a kernel's mask cache): right by construction and held by no caller, so
 * a call checks only that their geometry covers it, not every count and index again.
 */
const ownMasks = new WeakSet<BlockMask>();

/** Marks a mask that only the runtime holds as built by it (see `ownMasks`). */
export function markOwnMask(mask: BlockMask): BlockMask {
  ownMasks.add(mask);
  return mask;
}

/** Throws an InputError naming the member at fault unless `mask` is a valid mask for `target`. */
export function validateBlockMask(mask: BlockMask, target: BlockMaskTarget): void {
  checkGeometry(mask, target);
  if (ownMasks.has(mask)) return;
  const rows = mask.batch * mask.heads * mask.qBlocks;
  checkArray("kvNumBlocks", mask.kvNumBlocks, rows);
  checkArray("kvIndices", mask.kvIndices, rows * mask.kvBlocks);
  const hasFullCounts = mask.fullKvNumBlocks !== null && mask.fullKvNumBlocks !== undefined;
  const hasFullIndices = mask.fullKvIndices !== null && mask.fullKvIndices !== undefined;
  if (hasFullCounts !== hasFullIndices) {
    const [given, missing] = hasFullCounts ? ["fullKvNumBlocks", "fullKvIndices"] : ["fullKvIndices", "fullKvNumBlocks"];
    throw new InputError(`blockMask.${missing}`, `blockMask.${missing} is null but blockMask.${given} is given`);
  }
  if (hasFullCounts) {
    checkArray("fullKvNumBlocks", mask.fullKvNumBlocks, rows);
    checkArray("fullKvIndices", mask.fullKvIndices, rows * mask.kvBlocks);
  }
  // Stamping the partial blocks of row r with r + 1 finds a full block that is also partial without clearing.
  const stamp = new Int32Array(mask.kvBlocks);
  for (let row = 0; row < rows; row++) {
    checkRow(mask, "kvNumBlocks", "kvIndices", mask.kvNumBlocks, mask.kvIndices, row, (block) => {
      stamp[block] = row + 1;
    });
    if (!hasFullCounts) continue;
    checkRow(mask, "fullKvNumBlocks", "fullKvIndices", mask.fullKvNumBlocks!, mask.fullKvIndices!, row, (block, at) => {
      if (stamp[block] === row + 1) {
        throw new InputError(
          "blockMask.fullKvIndices",
          `blockMask.fullKvIndices${at} = ${block} is also a partial block of that row (in blockMask.kvIndices); ` +
            "partial and full blocks must be disjoint",
        );
      }
    });
  }
}

/** Throws an InputError unless `mask`'s dims and block sizes cover `target` (its arrays are not looked at). */
export function checkGeometry(mask: BlockMask, target: BlockMaskTarget): void {
  for (const member of ["batch", "heads", "qBlocks", "kvBlocks", "qBlockSize", "kvBlockSize"] as const) {
    const value = mask[member];
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new InputError(`blockMask.${member}`, `blockMask.${member} = ${value} is not a non-negative integer`);
    }
  }
  if (mask.qBlockSize !== target.qBlockSize || mask.kvBlockSize !== target.kvBlockSize) {
    const member = mask.qBlockSize !== target.qBlockSize ? "qBlockSize" : "kvBlockSize";
    throw new InputError(
      `blockMask.${member}`,
      `blockMask block size [${mask.qBlockSize}, ${mask.kvBlockSize}] differs from the graph's blockSize ` +
        `[${target.qBlockSize}, ${target.kvBlockSize}]`,
    );
  }
  if (mask.batch !== 1 && mask.batch !== target.batch) {
    throw new InputError("blockMask.batch", `blockMask.batch = ${mask.batch} must be 1 or the batch size ${target.batch}`);
  }
  if (mask.heads !== 1 && mask.heads !== target.heads) {
    throw new InputError("blockMask.heads", `blockMask.heads = ${mask.heads} must be 1 or the query head count ${target.heads}`);
  }
  const qBlocks = blocksFor(target.qLen, target.qBlockSize);
  if (mask.qBlocks < qBlocks) {
    throw new InputError(
      "blockMask.qBlocks",
      `blockMask.qBlocks = ${mask.qBlocks} does not cover q_len ${target.qLen} (needs ${qBlocks} blocks of ${target.qBlockSize})`,
    );
  }
  const kvBlocks = blocksFor(target.kvLen, target.kvBlockSize);
  if (mask.kvBlocks < kvBlocks) {
    throw new InputError(
      "blockMask.kvBlocks",
      `blockMask.kvBlocks = ${mask.kvBlocks} does not cover kv_len ${target.kvLen} (needs ${kvBlocks} blocks of ${target.kvBlockSize})`,
    );
  }
}

function checkArray(member: string, array: unknown, length: number): void {
  if (!(array instanceof Int32Array)) {
    throw new InputError(`blockMask.${member}`, `blockMask.${member} must be an Int32Array, got ${describe(array)}`);
  }
  if (array.length !== length) {
    throw new InputError(`blockMask.${member}`, `blockMask.${member} has ${array.length} entries, expected ${length}`);
  }
}

/** Checks one row's count and its indices (in range, strictly ascending), handing each index to `visit`. */
function checkRow(
  mask: BlockMask,
  countsName: string,
  indicesName: string,
  counts: Int32Array,
  indices: Int32Array,
  row: number,
  visit: (block: number, at: string) => void,
): void {
  const count = counts[row];
  if (count < 0 || count > mask.kvBlocks) {
    throw new InputError(
      `blockMask.${countsName}`,
      `blockMask.${countsName}${rowPath(mask, row)} = ${count} is outside [0, kvBlocks = ${mask.kvBlocks}]`,
    );
  }
  const base = row * mask.kvBlocks;
  let previous = -1;
  for (let j = 0; j < count; j++) {
    const block = indices[base + j];
    const at = `${rowPath(mask, row)}[${j}]`;
    if (block < 0 || block >= mask.kvBlocks) {
      throw new InputError(
        `blockMask.${indicesName}`,
        `blockMask.${indicesName}${at} = ${block} is not a kv block (kvBlocks = ${mask.kvBlocks})`,
      );
    }
    if (block <= previous) {
      throw new InputError(
        `blockMask.${indicesName}`,
        `blockMask.${indicesName}${at} = ${block} does not follow ${previous}: indices must be strictly ascending`,
      );
    }
    visit(block, at);
    previous = block;
  }
}

function rowPath(mask: BlockMask, row: number): string {
  const qBlock = row % mask.qBlocks;
  const head = Math.floor(row / mask.qBlocks) % mask.heads;
  const batch = Math.floor(row / (mask.qBlocks * mask.heads));
  return `[${batch}][${head}][${qBlock}]`;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  return (value as object).constructor?.name ?? typeof value;
}
