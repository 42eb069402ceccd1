// Build step, run by `npm run build` after tsc: precompiles src/templates/*.njk into dist/ (see
// src/codegen/precompileTemplates.ts), so a fresh process renders the kernel without compiling the templates.
import { writePrecompiledTemplates } from "../dist/codegen/precompileTemplates.js";

writePrecompiledTemplates();
