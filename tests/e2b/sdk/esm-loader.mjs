// Loads E2B's SDK packages from their ES module builds (package.json "module").
//
// Their "main" builds are CommonJS that require() chalk, an ES module: that needs
// require(esm), which Node.js 18 (Debian 12's) lacks, so `import '@e2b/code-interpreter'`
// fails there with ERR_REQUIRE_ESM. The ES module builds come from the same sources
// and import chalk as ES modules. tests/e2b/run_conformance.py passes this file as
// --experimental-loader only where the plain import fails.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const PACKAGES = new Set(['e2b', '@e2b/code-interpreter']);

export async function resolve(specifier, context, nextResolve) {
  if (PACKAGES.has(specifier)) {
    const manifest = require.resolve(`${specifier}/package.json`);
    const { module } = JSON.parse(readFileSync(manifest, 'utf8'));
    if (module) {
      const url = pathToFileURL(manifest.replace(/package\.json$/, module)).href;
      return { url, format: 'module', shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}
