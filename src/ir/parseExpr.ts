import { type Ast, type BinaryOperator, BINARY_PRECEDENCE, COMPARISON_PRECEDENCE, UNARY_PRECEDENCE, type UnaryOperator } from "./ast.js";
import { SpecError } from "./errors.js";

/**
 * Parses a mod expression string into its surface Ast.
 *
 * A small Pratt parser rather than jsep: every node must carry its column so that type errors can point at
 * it, jsep records no positions, and the grammar (numbers, names, calls, `a[i][j]`, prefix and binary
 * operators with `//`, ternary) is small.
 */
export function parseExpr(source: string, field: string): Ast {
  const parser = new Parser(source, field);
  const ast = parser.expression(0);
  parser.expectEnd();
  return ast;
}

type Token =
  | { kind: "number"; text: string; pos: number }
  | { kind: "name"; text: string; pos: number }
  | { kind: "punct"; text: string; pos: number }
  | { kind: "end"; text: ""; pos: number };

// Longest first, so `//` wins over `/` and `**` over `*`.
const PUNCTUATION = [
  "//", "**", "==", "!=", "<=", ">=", "&&", "||",
  "+", "-", "*", "/", "%", "<", ">", "&", "|", "^", "!", "~", "?", ":", "(", ")", "[", "]", ",",
];

function tokenize(source: string, field: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const number = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(source.slice(i));
    if (number) {
      tokens.push({ kind: "number", text: number[0], pos: i });
      i += number[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i));
    if (name) {
      tokens.push({ kind: "name", text: name[0], pos: i });
      i += name[0].length;
      continue;
    }
    const punct = PUNCTUATION.find((p) => source.startsWith(p, i));
    if (!punct) {
      throw new SpecError(`unexpected character '${c}'`, { field, column: i, source });
    }
    tokens.push({ kind: "punct", text: punct, pos: i });
    i += punct.length;
  }
  tokens.push({ kind: "end", text: "", pos: source.length });
  return tokens;
}

class Parser {
  private readonly tokens: Token[];
  private at = 0;
  /** Nodes written inside parentheses, which may stand anywhere. */
  private readonly parenthesised = new Set<Ast>();

  constructor(private readonly source: string, private readonly field: string) {
    if (source.trim() === "") this.fail("the expression is empty", 0);
    this.tokens = tokenize(source, field);
  }

  expectEnd(): void {
    const t = this.peek();
    if (t.kind !== "end") this.fail(`unexpected '${t.text}' after the end of the expression`, t.pos);
  }

  /** Parses operators binding tighter than `minPrecedence`; the ternary binds loosest. */
  expression(minPrecedence: number): Ast {
    let left = this.prefix();
    for (;;) {
      const t = this.peek();
      if (t.kind !== "punct") break;
      if (t.text === "?" && minPrecedence === 0) {
        this.next();
        const then = this.expression(0);
        this.expect(":");
        const otherwise = this.expression(0);
        left = { kind: "ternary", cond: left, then, else: otherwise, pos: t.pos };
        continue;
      }
      const precedence = BINARY_PRECEDENCE[t.text as BinaryOperator];
      if (precedence === undefined || precedence <= minPrecedence) break;
      if (precedence === COMPARISON_PRECEDENCE && left.kind === "binary" && BINARY_PRECEDENCE[left.op] === COMPARISON_PRECEDENCE && !this.parenthesised.has(left)) {
        this.fail("comparisons do not chain; write (a < b) && (b < c)", t.pos);
      }
      this.next();
      // `**` is right-associative: its right side may contain another `**`.
      const right = this.expression(t.text === "**" ? precedence - 1 : precedence);
      left = { kind: "binary", op: t.text as BinaryOperator, left, right, pos: t.pos };
    }
    return left;
  }

  private prefix(): Ast {
    const t = this.next();
    if (t.kind === "punct" && ["-", "+", "!", "~"].includes(t.text)) {
      const arg = this.expression(UNARY_PRECEDENCE);
      return { kind: "unary", op: t.text as UnaryOperator, arg, pos: t.pos };
    }
    if (t.kind === "punct" && t.text === "(") {
      const inner = this.expression(0);
      this.expect(")");
      this.parenthesised.add(inner);
      return inner;
    }
    if (t.kind === "number") {
      const value = Number(t.text);
      const isInt = /^\d+$/.test(t.text);
      if (isInt && !Number.isSafeInteger(value)) this.fail(`integer ${t.text} is too large`, t.pos);
      return { kind: "number", value, isInt, pos: t.pos };
    }
    if (t.kind === "name") return this.nameOrCall(t);
    if (t.kind === "end") this.fail("the expression ends too early", t.pos);
    this.fail(`unexpected '${t.text}'`, t.pos);
  }

  private nameOrCall(t: Token): Ast {
    const next = this.peek();
    if (next.kind === "punct" && next.text === "(") {
      this.next();
      const args: Ast[] = [];
      if (!this.accept(")")) {
        do args.push(this.expression(0));
        while (this.accept(","));
        this.expect(")");
      }
      return { kind: "call", name: t.text, args, pos: t.pos };
    }
    if (next.kind === "punct" && next.text === "[") {
      const indices: Ast[] = [];
      while (this.accept("[")) {
        indices.push(this.expression(0));
        this.expect("]");
      }
      return { kind: "index", name: t.text, indices, pos: t.pos };
    }
    if (t.text === "true" || t.text === "True") return { kind: "bool", value: true, pos: t.pos };
    if (t.text === "false" || t.text === "False") return { kind: "bool", value: false, pos: t.pos };
    return { kind: "name", name: t.text, pos: t.pos };
  }

  private peek(): Token {
    return this.tokens[this.at];
  }

  private next(): Token {
    const t = this.tokens[this.at];
    if (t.kind !== "end") this.at++;
    return t;
  }

  private accept(text: string): boolean {
    const t = this.peek();
    if (t.kind === "punct" && t.text === text) {
      this.at++;
      return true;
    }
    return false;
  }

  private expect(text: string): void {
    if (!this.accept(text)) {
      const t = this.peek();
      this.fail(t.kind === "end" ? `expected '${text}' before the end` : `expected '${text}' but found '${t.text}'`, t.pos);
    }
  }

  private fail(problem: string, column: number): never {
    throw new SpecError(problem, { field: this.field, column, source: this.source });
  }
}
