/**
 * The header of a .npy file is the repr of a Python dict, e.g.
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`. This reads the small subset of Python
 * literals numpy writes there (strings, True/False/None, integers, tuples, lists, dicts) and formats it back.
 */
import { NpyError } from "./npyError.js";

export interface NpyHeader {
  /** numpy's dtype string, e.g. `<f4`. */
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

type PyValue = string | number | boolean | null | PyValue[] | Map<string, PyValue>;

class LiteralReader {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly source: string,
  ) {}

  fail(problem: string): never {
    throw new NpyError(this.source, `bad header at character ${this.pos}: ${problem}`);
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++;
  }

  peek(): string {
    this.skipSpace();
    return this.text[this.pos] ?? "";
  }

  expect(char: string): void {
    if (this.peek() !== char) this.fail(`expected '${char}', found '${this.peek() || "end of header"}'`);
    this.pos++;
  }

  atEnd(): boolean {
    return this.peek() === "";
  }

  value(): PyValue {
    const c = this.peek();
    if (c === "{") return this.dict();
    if (c === "(") return this.sequence("(", ")");
    if (c === "[") return this.sequence("[", "]");
    if (c === "'" || c === '"') return this.string();
    const word = /^(True|False|None|-?\d+L?)/.exec(this.text.slice(this.pos));
    if (word === null) this.fail(`unexpected '${c || "end of header"}'`);
    this.pos += word[0].length;
    if (word[0] === "True") return true;
    if (word[0] === "False") return false;
    if (word[0] === "None") return null;
    // Python 2 era files write longs as `3L`.
    return Number(word[0].replace("L", ""));
  }

  private string(): string {
    const quote = this.text[this.pos++];
    let out = "";
    while (this.pos < this.text.length && this.text[this.pos] !== quote) {
      if (this.text[this.pos] === "\\") this.pos++;
      out += this.text[this.pos++] ?? "";
    }
    if (this.pos >= this.text.length) this.fail("unterminated string");
    this.pos++;
    return out;
  }

  /** Python allows a trailing comma in every container, and numpy always writes one after the last key. */
  private items(close: string, item: () => void): void {
    while (this.peek() !== close) {
      item();
      if (this.peek() === ",") this.pos++;
      else if (this.peek() !== close) this.fail(`expected ',' or '${close}'`);
    }
    this.pos++;
  }

  private sequence(open: string, close: string): PyValue[] {
    this.expect(open);
    const out: PyValue[] = [];
    this.items(close, () => out.push(this.value()));
    return out;
  }

  private dict(): Map<string, PyValue> {
    this.expect("{");
    const out = new Map<string, PyValue>();
    this.items("}", () => {
      const key = this.value();
      if (typeof key !== "string") this.fail("dict keys must be strings");
      if (out.has(key)) this.fail(`duplicate key '${key}'`);
      this.expect(":");
      out.set(key, this.value());
    });
    return out;
  }
}

const REQUIRED_KEYS = ["descr", "fortran_order", "shape"];

/** Parses the header text; `source` names the file in errors. */
export function parseNpyHeader(text: string, source: string): NpyHeader {
  const reader = new LiteralReader(text, source);
  const dict = reader.value();
  if (!reader.atEnd()) reader.fail("text after the header dict");
  if (!(dict instanceof Map)) throw new NpyError(source, "header is not a dict");
  const keys = [...dict.keys()].sort();
  if (keys.join() !== REQUIRED_KEYS.join()) {
    throw new NpyError(source, `header keys are [${keys.join(", ")}], expected [${REQUIRED_KEYS.join(", ")}]`);
  }
  const descr = dict.get("descr");
  if (typeof descr !== "string") throw new NpyError(source, "structured dtypes (a list as 'descr') are not supported");
  const fortranOrder = dict.get("fortran_order");
  if (typeof fortranOrder !== "boolean") throw new NpyError(source, "'fortran_order' is not True or False");
  const shape = dict.get("shape");
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)) {
    throw new NpyError(source, "'shape' is not a tuple of non-negative integers");
  }
  return { descr, fortranOrder, shape: shape as number[] };
}

function formatShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

/** The dict exactly as numpy writes it (keys sorted, trailing comma), without padding. */
export function formatNpyHeader(header: NpyHeader): string {
  const order = header.fortranOrder ? "True" : "False";
  return `{'descr': '${header.descr}', 'fortran_order': ${order}, 'shape': ${formatShape(header.shape)}, }`;
}
