#!/usr/bin/env node
import { main } from "../dist/cli/main.js";

// A reader that stops early (`minductor explain spec.json | head`) closes the pipe; stop quietly, as other command-line
// tools do, instead of dying on an unhandled EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}

process.exitCode = await main(process.argv);
