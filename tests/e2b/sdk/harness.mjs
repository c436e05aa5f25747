// Shared by the E2B SDK suites (conformance.test.mjs, interpreter.test.mjs): the
// mode, and the record of the cases that ran and every SDK call with its result
// (logged on stderr as `[sdk] call → result`; written as JSON to
// $E2B_CONFORMANCE_REPORT after the suite).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';

export const DEBUG = (process.env.E2B_DEBUG ?? '').toLowerCase() === 'true';
export const MODE = DEBUG ? 'debug' : 'url';
const CASE_TIMEOUT_MS = 60_000;

if (!DEBUG) {
  for (const name of ['E2B_API_KEY', 'E2B_API_URL', 'E2B_SANDBOX_URL']) {
    assert.ok(process.env[name], `mode url needs ${name} (or set E2B_DEBUG=true for mode debug)`);
  }
}

export const report = { mode: MODE, cases: [], calls: [] };

/** Runs one SDK call, logging `[sdk] label → result`; returns its value or rethrows. */
export async function sdk(label, call, describe = () => 'ok') {
  try {
    const value = await call();
    const result = describe(value);
    report.calls.push({ call: label, result });
    process.stderr.write(`[sdk] ${label} → ${result}\n`);
    return value;
  } catch (error) {
    const result = `${error?.constructor?.name ?? 'Error'}: ${String(error?.message).split('\n')[0]}`;
    report.calls.push({ call: label, result });
    process.stderr.write(`[sdk] ${label} → ${result}\n`);
    throw error;
  }
}

/** A test that records its outcome; `skip` (a reason) where the mode makes it meaningless. */
export function conformance(name, fn, { skip } = {}) {
  const entry = { name, result: skip ? 'skip' : 'not run', ...(skip && { reason: skip }) };
  report.cases.push(entry);
  if (skip) {
    test(name, { skip });
    return;
  }
  test(name, { timeout: CASE_TIMEOUT_MS }, async () => {
    try {
      await fn();
      entry.result = 'pass';
    } catch (error) {
      Object.assign(entry, { result: 'fail', error: String(error?.message) });
      throw error;
    }
  });
}

/** Asserts that `promise` rejects with an instance of `errorClass`. */
export async function assertRejectsWith(promise, errorClass, what) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof errorClass,
      `${what}: expected ${errorClass.name}, got ${error?.constructor?.name}: ${error?.message}`);
    return true;
  });
}

export const describeExecution = (execution) =>
  `text=${JSON.stringify(execution.text)} stdout=${JSON.stringify(execution.logs.stdout.join(''))}` +
  ` stderr=${JSON.stringify(execution.logs.stderr.join(''))} results=${execution.results.length}` +
  ` error=${execution.error ? execution.error.name : 'none'}`;

export const run = (sandbox, code, opts = {}, label = JSON.stringify(code)) =>
  sdk(`runCode(${label}${opts.language ? `, ${opts.language}` : ''}${opts.context ? ', context' : ''})`,
    () => sandbox.runCode(code, opts), describeExecution);

/** Registers the report's writing after the suite (call once, after its own `after`s). */
export function writeReportAfterSuite() {
  after(() => {
    if (process.env.E2B_CONFORMANCE_REPORT) {
      writeFileSync(process.env.E2B_CONFORMANCE_REPORT, JSON.stringify(report, null, 2));
    }
  });
}
