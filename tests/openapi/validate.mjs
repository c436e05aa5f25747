// Validates docs/openapi.json: the official OpenAPI 3.1 schema (through
// @seriousme/openapi-schema-validator), every $ref resolvable, every schema a valid
// JSON Schema 2020-12 (ajv, strict), and the rules the schema cannot express: every
// `{param}` of a path is declared, operationIds are unique.
// Usage: node tests/openapi/validate.mjs [docs/openapi.json]
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const file = process.argv[2] ?? fileURLToPath(new URL('../../docs/openapi.json', import.meta.url));
const doc = JSON.parse(readFileSync(file, 'utf8'));
const problems = [];

const validator = new Validator();
const result = await validator.validate(structuredClone(doc));
if (!result.valid) problems.push(`not a valid OpenAPI document: ${JSON.stringify(result.errors, null, 2)}`);
if (validator.version !== '3.1') problems.push(`OpenAPI version is ${validator.version}, expected 3.1`);
try {
  validator.resolveRefs();
} catch (e) {
  problems.push(`unresolvable $ref: ${e.message}`);
}

const ajv = new Ajv2020({ strict: true, strictTypes: false, allErrors: true, validateFormats: false });
// The components' schemas as one 2020-12 schema, their refs pointing into its $defs.
const defs = JSON.parse(
  JSON.stringify(doc.components?.schemas ?? {}).replaceAll('"#/components/schemas/', '"openapi#/$defs/'),
);
try {
  ajv.addSchema({ $id: 'openapi', $defs: defs });
  for (const name of Object.keys(defs)) ajv.getSchema(`openapi#/$defs/${name}`);
} catch (e) {
  problems.push(`a schema is not valid JSON Schema 2020-12: ${e.message}`);
}

const operationIds = new Set();
const resolve = (p) => (p.$ref ? p.$ref.split('/').slice(1).reduce((o, k) => o[k], doc) : p);
for (const [path, item] of Object.entries(doc.paths)) {
  const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
  for (const [method, op] of Object.entries(item)) {
    if (method === 'parameters') continue;
    if (!op.operationId) problems.push(`${method.toUpperCase()} ${path}: no operationId`);
    else if (operationIds.has(op.operationId)) problems.push(`duplicate operationId ${op.operationId}`);
    operationIds.add(op.operationId);
    const declared = [...(item.parameters ?? []), ...(op.parameters ?? [])]
      .map(resolve)
      .filter((p) => p.in === 'path')
      .map((p) => p.name);
    for (const name of templated)
      if (!declared.includes(name)) problems.push(`${method.toUpperCase()} ${path}: path parameter {${name}} not declared`);
    if (!op.responses || Object.keys(op.responses).length === 0)
      problems.push(`${method.toUpperCase()} ${path}: no responses`);
  }
}

if (problems.length) {
  console.error(problems.join('\n'));
  console.log(`openapi: 0 passed, 1 failed`);
  process.exit(1);
}
console.log(`${file}: valid OpenAPI ${validator.version}, ${operationIds.size} operations, ` +
  `${Object.keys(doc.components.schemas).length} schemas`);
console.log('openapi: 1 passed, 0 failed');
