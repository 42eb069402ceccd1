/**
 * Child-process entry of the bench: `node dist/bench/runCase.js '<request JSON>'` measures one case and prints
 * its result as one JSON line on stdout. Progress and warnings go to stderr, so stdout stays parseable.
 */
import { caseRequestSchema } from "./benchCase.js";
import { measureCase } from "./measureCase.js";

const request = caseRequestSchema.parse(JSON.parse(process.argv[2] ?? "null"));
const result = await measureCase(request);
process.stdout.write(`${JSON.stringify(result)}\n`);
