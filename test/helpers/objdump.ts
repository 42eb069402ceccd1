import { execFileSync } from "node:child_process";

/**
 * How many instructions matching `mnemonic` each function of a shared library holds, for the functions that hold any
 * (objdump -d; mangled names). Proof that a build takes an instruction-set path, not just that it computes right.
 */
export function instructionsPerFunction(so: string, mnemonic: RegExp): Map<string, number> {
  const counts = new Map<string, number>();
  let fn = "";
  for (const line of execFileSync("objdump", ["-d", "--no-show-raw-insn", so], { maxBuffer: 1 << 28 }).toString().split("\n")) {
    const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
    if (head) fn = head[1];
    else if (mnemonic.test(line)) counts.set(fn, (counts.get(fn) ?? 0) + 1);
  }
  return counts;
}
