// Run before `npm start` and `npm test`: on a fresh clone (or after the lockfile changed) install the locked
// dependencies with `npm ci` first, so those two commands work without a separate install step. Uses only Node's
// own modules, since nothing else is installed yet when it runs.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";

const installed = "node_modules/.package-lock.json"; // written by npm at the end of every install
const fresh = existsSync(installed) && statSync(installed).mtimeMs >= statSync("package-lock.json").mtimeMs;
if (!fresh) {
  process.stderr.write("minductor: installing the locked dependencies (npm ci)\n");
  const result = spawnSync("npm", ["ci"], { stdio: "inherit", shell: process.platform === "win32" });
  process.exit(result.status ?? 1);
}
