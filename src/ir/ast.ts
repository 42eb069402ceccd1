/**
 * The surface form of a mod, as written: what the parser reads from a string and the tracer records from
 * TypeScript. Positions are 0-based columns into the source (-1 for traced nodes). Type inference turns an
 * Ast into a typed, hash-consed Expr.
 */
export type Ast =
  | { kind: "number"; value: number; isInt: boolean; pos: number }
  | { kind: "bool"; value: boolean; pos: number }
  | { kind: "name"; name: string; pos: number }
  | { kind: "index"; name: string; indices: Ast[]; pos: number }
  | { kind: "call"; name: string; args: Ast[]; pos: number }
  | { kind: "unary"; op: UnaryOperator; arg: Ast; pos: number }
  | { kind: "binary"; op: BinaryOperator; left: Ast; right: Ast; pos: number }
  | { kind: "ternary"; cond: Ast; then: Ast; else: Ast; pos: number };

export type UnaryOperator = "-" | "+" | "!" | "~";
export type BinaryOperator =
  | "+" | "-" | "*" | "/" | "//" | "%" | "**"
  | "==" | "!=" | "<" | "<=" | ">" | ">="
  | "&" | "|" | "^" | "&&" | "||";

/**
 * Binding power of each binary operator (higher binds tighter). As in Python, where mods are usually first
 * written, `&`, `|` and `^` bind tighter than comparisons, so `(a & 1) == 0` needs no parentheses but
 * `(q_idx >= kv_idx) & (h < 4)` does. Comparisons do not chain (`a < b < c` is refused: Python and C
 * disagree on its meaning). `**` is right-associative.
 */
export const BINARY_PRECEDENCE: Readonly<Record<BinaryOperator, number>> = {
  "||": 1, "&&": 2,
  "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
  "|": 4, "^": 5, "&": 6,
  "+": 9, "-": 9, "*": 10, "/": 10, "//": 10, "%": 10, "**": 12,
};
export const COMPARISON_PRECEDENCE = 3;
/** Prefix operators bind tighter than every binary operator except `**` (so `-x ** 2` is `-(x ** 2)`). */
export const UNARY_PRECEDENCE = 11;
