// E2B conformance: the official @e2b/code-interpreter SDK (pinned in
// package.json) against whatever server the environment points it at.
//
//   mode debug: E2B_DEBUG=true — the SDK skips the control plane and talks to
//               http://localhost:49999 (code interpreter) and :49983 (envd)
//               (docs/reference/e2b-protocol.md §4).
//   mode url:   E2B_API_KEY, E2B_API_URL and E2B_SANDBOX_URL — control plane and
//               data plane on one base URL, demultiplexed by the E2b-Sandbox-*
//               headers (§2, §4).
//
// Run: node --test tests/e2b/sdk/conformance.test.mjs (tests/e2b/run_conformance.py
// starts a server and sets the environment). Every SDK call is logged on stderr
// as one `[sdk] call → result` line; with E2B_CONFORMANCE_REPORT=<file> the cases
// and calls are also written there as JSON.

import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { NotFoundError, Sandbox, TimeoutError } from '@e2b/code-interpreter';
import { DEBUG, assertRejectsWith, conformance, run, sdk, writeReportAfterSuite } from './harness.mjs';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

// ---- the shared sandbox ---------------------------------------------------

let sandbox;

before(async () => {
  sandbox = await sdk('Sandbox.create()', () => Sandbox.create(), (s) => `sandboxId=${s.sandboxId}`);
});

after(async () => {
  // Url mode: the sandbox must not outlive the suite on a real server. The
  // kill case uses its own sandbox, so this one is still alive here.
  if (sandbox && !DEBUG) await sdk('kill() (cleanup)', () => sandbox.kill(), String).catch(() => {});
});
writeReportAfterSuite();

// ---- cases ----------------------------------------------------------------

conformance('Sandbox.create', async () => {
  assert.ok(sandbox.sandboxId, 'the sandbox has an id');
  if (DEBUG) {
    assert.equal(sandbox.sandboxId, 'debug_sandbox_id', 'debug mode: the SDK names the sandbox itself (§4)');
  } else {
    assert.notEqual(sandbox.sandboxId, 'debug_sandbox_id', 'url mode: the id comes from POST /v2/sandboxes');
  }
  assert.equal(await sdk('isRunning()', () => sandbox.isRunning(), String), true,
    'isRunning() (envd GET /health → 204) is true for a new sandbox');
});

conformance('runCode streams stdout and stderr through callbacks and into logs', async () => {
  const stdout = [];
  const stderr = [];
  const execution = await run(sandbox,
    'import sys\nprint("out-1")\nprint("err-1", file=sys.stderr)\nprint("out-2")',
    { onStdout: (m) => stdout.push(m.line), onStderr: (m) => stderr.push(m.line) }, '<print to both streams>');
  assert.equal(stdout.join(''), 'out-1\nout-2\n', 'onStdout received the stdout lines');
  assert.equal(stderr.join(''), 'err-1\n', 'onStderr received the stderr line');
  assert.deepEqual(execution.logs.stdout, stdout, 'execution.logs.stdout holds what onStdout received');
  assert.deepEqual(execution.logs.stderr, stderr, 'execution.logs.stderr holds what onStderr received');
  assert.equal(execution.error, undefined, 'no error');
});

conformance('the last expression is execution.text', async () => {
  const execution = await run(sandbox, '1+1');
  assert.equal(execution.text, '2', 'the main result of `1+1`');
  assert.equal(execution.results.filter((r) => r.isMainResult).length, 1, 'exactly one main result');
  assert.equal(typeof execution.executionCount, 'number', 'number_of_executions sets executionCount');
});

conformance('a Python error comes back with its traceback', async () => {
  const execution = await run(sandbox, '1/0');
  assert.ok(execution.error, 'execution.error is set');
  assert.equal(execution.error.name, 'ZeroDivisionError', 'the error name');
  assert.match(execution.error.value, /division by zero/, 'the error value');
  assert.match(execution.error.traceback, /ZeroDivisionError/, 'the traceback names the error');
  assert.equal(execution.text, undefined, 'no main result');
});

conformance('state is kept across calls', async () => {
  await run(sandbox, 'x = 41');
  assert.equal((await run(sandbox, 'x + 1')).text, '42', 'x survives between runCode calls');
});

conformance('javascript: the last expression is execution.text', async () => {
  const execution = await run(sandbox, '[1, 2, 3].map((n) => n * 2).join(",")', { language: 'javascript' });
  assert.equal(execution.text, '2,4,6', 'the main result, quotes stripped as E2B does');
  const logged = await run(sandbox, 'console.log("from js")', { language: 'javascript' });
  assert.deepEqual(logged.logs.stdout, ['from js\n'], 'console.log is stdout');
});

conformance('contexts: create, run, separate state, list, restart, remove', async () => {
  const python = await sdk("createCodeContext({language: 'python'})",
    () => sandbox.createCodeContext({ language: 'python' }), (c) => JSON.stringify(c));
  const javascript = await sdk("createCodeContext({language: 'javascript'})",
    () => sandbox.createCodeContext({ language: 'javascript' }), (c) => JSON.stringify(c));
  assert.equal(python.language, 'python', 'the python context says its language');
  assert.equal(javascript.language, 'javascript', 'the javascript context says its language');
  assert.equal(python.cwd, '/home/user', 'the default cwd (§3.2)');

  await run(sandbox, 'only_here = "py-context"', { context: python });
  assert.equal((await run(sandbox, 'only_here', { context: python })).text, 'py-context',
    'state kept inside the new python context');
  const elsewhere = await run(sandbox, 'only_here');
  assert.equal(elsewhere.error?.name, 'NameError', 'the default python context does not see it');
  await run(sandbox, 'const answer = 21', { context: javascript });
  assert.equal((await run(sandbox, 'answer * 2', { context: javascript })).text, '42',
    'state kept inside the javascript context');

  const listed = await sdk('listCodeContexts()', () => sandbox.listCodeContexts(),
    (cs) => cs.map((c) => `${c.language}:${c.id}`).join(' '));
  const ids = listed.map((c) => c.id);
  assert.ok(ids.includes(python.id) && ids.includes(javascript.id), 'both new contexts are listed');
  for (const language of ['python', 'javascript']) {
    assert.ok(listed.some((c) => c.language === language && c.id !== python.id && c.id !== javascript.id),
      `the default ${language} context is listed too (§3.2)`);
  }

  await sdk('restartCodeContext(python)', () => sandbox.restartCodeContext(python));
  const restarted = await run(sandbox, 'only_here', { context: python });
  assert.equal(restarted.error?.name, 'NameError', 'a restarted context has lost its state');

  await sdk('removeCodeContext(javascript)', () => sandbox.removeCodeContext(javascript));
  const after = await sdk('listCodeContexts()', () => sandbox.listCodeContexts(),
    (cs) => cs.map((c) => `${c.language}:${c.id}`).join(' '));
  assert.ok(!after.some((c) => c.id === javascript.id), 'a removed context is no longer listed');
  await assertRejectsWith(run(sandbox, '1', { context: javascript }), NotFoundError,
    'runCode in a removed context');
  await sdk('removeCodeContext(python)', () => sandbox.removeCodeContext(python));
});

conformance('an unknown context is NotFoundError', async () => {
  await assertRejectsWith(
    run(sandbox, '1', { context: { id: 'nope', language: 'python', cwd: '/home/user' } }),
    NotFoundError, 'runCode with context id "nope" (404)');
});

conformance('a matplotlib figure is a PNG result', async () => {
  const execution = await run(sandbox,
    'import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()', {}, '<plt.plot; plt.show()>');
  assert.equal(execution.error, undefined, `no error (${execution.error?.value})`);
  const figure = execution.results.find((r) => r.png);
  assert.ok(figure, `a result with png among ${execution.results.length} results`);
  assert.equal(figure.isMainResult, false, 'a displayed figure is not the main result');
  assert.ok(figure.formats().includes('png'), 'formats() lists png');
  const bytes = Buffer.from(figure.png, 'base64');
  assert.deepEqual([...bytes.subarray(0, 8)], PNG_SIGNATURE, 'the base64 decodes to a PNG');
});

conformance('files.write then files.read round-trips text and bytes', async () => {
  const text = 'héllo\nwörld ✓\n';
  const written = await sdk("files.write('conformance/hello.txt', text)",
    () => sandbox.files.write('conformance/hello.txt', text), (info) => JSON.stringify(info));
  assert.equal(written.name, 'hello.txt', 'the written entry is named');
  assert.equal(await sdk("files.read('conformance/hello.txt')",
    () => sandbox.files.read('conformance/hello.txt'), (t) => JSON.stringify(t)), text, 'text round trip');

  const bytes = Uint8Array.from({ length: 512 }, (_, i) => (i * 37) % 256);  // every byte value, CR/LF included
  await sdk("files.write('/home/user/conformance/data.bin', bytes)",
    () => sandbox.files.write('/home/user/conformance/data.bin', bytes.buffer), (info) => JSON.stringify(info));
  const readBack = await sdk("files.read('/home/user/conformance/data.bin', {format: 'bytes'})",
    () => sandbox.files.read('/home/user/conformance/data.bin', { format: 'bytes' }), (b) => `${b.length} bytes`);
  assert.deepEqual(Buffer.from(readBack), Buffer.from(bytes), 'binary round trip');

  const seen = await run(sandbox, 'print(open("conformance/hello.txt", encoding="utf-8").read(), end="")', {},
    '<print the file in python>');
  assert.equal(seen.logs.stdout.join(''), text, 'the kernel sees the file in its cwd, /home/user');
});

conformance('setTimeout', async () => {
  if (DEBUG) {
    // Debug mode: setTimeout is a no-op in the SDK, and getInfo would go to a
    // control plane at localhost:3000 that debug mode does not have (§4).
    await sdk('setTimeout(600_000)', () => sandbox.setTimeout(600_000), () => 'ok (no-op in debug mode)');
    return;
  }
  const before = await sdk('getInfo()', () => sandbox.getInfo(), (i) => `endAt=${i.endAt.toISOString()}`);
  await sdk('setTimeout(900_000)', () => sandbox.setTimeout(900_000));
  const later = await sdk('getInfo()', () => sandbox.getInfo(), (i) => `endAt=${i.endAt.toISOString()}`);
  assert.ok(later.endAt > before.endAt, `endAt moved later (${before.endAt.toISOString()} → ${later.endAt.toISOString()})`);
  const expected = Date.now() + 900_000;
  assert.ok(Math.abs(later.endAt.getTime() - expected) < 60_000,
    `endAt ≈ now + 900 s (${later.endAt.toISOString()})`);
});

conformance('Sandbox.list contains the sandbox', async () => {
  const paginator = Sandbox.list();
  const found = [];
  while (paginator.hasNext) {
    found.push(...await sdk('Sandbox.list().nextItems()', () => paginator.nextItems(),
      (items) => `${items.length} sandboxes`));
  }
  const listed = found.find((s) => s.sandboxId === sandbox.sandboxId);
  assert.ok(listed, `${sandbox.sandboxId} is among ${found.map((s) => s.sandboxId).join(', ')}`);
  assert.equal(listed.state, 'running', 'it is running');
}, { skip: DEBUG && 'debug mode: Sandbox.list goes to a control plane at localhost:3000 that debug mode does not have (§4)' });

conformance('a runCode timeout rejects with TimeoutError and the server interrupts the cell', async () => {
  await run(sandbox, 'kept = "before the timeout"');
  const started = Date.now();
  await assertRejectsWith(run(sandbox, 'import time; time.sleep(30)', { timeoutMs: 500 }), TimeoutError,
    'runCode with timeoutMs 500');
  assert.ok(Date.now() - started < 10_000, 'the SDK gave up after about timeoutMs');
  // The same (default) context serializes cells: this one can only run this
  // soon if the server interrupted the sleep when the client went away (§3.1).
  const next = await run(sandbox, 'kept');
  assert.ok(Date.now() - started < 15_000, `the next cell ran well before the 30 s sleep would end (${Date.now() - started} ms)`);
  assert.equal(next.text, 'before the timeout', 'an interrupt keeps the kernel and its state');
});

conformance('kill', async () => {
  if (DEBUG) {
    // Debug mode: kill() is a no-op returning true (§4); the server's sandbox
    // stays, so "not running afterwards" cannot be checked.
    assert.equal(await sdk('kill()', () => sandbox.kill(), String), true, 'kill() is true in debug mode');
    return;
  }
  const doomed = await sdk('Sandbox.create() (to kill)', () => Sandbox.create(), (s) => `sandboxId=${s.sandboxId}`);
  assert.equal((await run(doomed, '1+1')).text, '2', 'the new sandbox runs code');
  assert.equal(await sdk('kill()', () => doomed.kill(), String), true, 'kill() of a running sandbox is true');
  assert.equal(await sdk('isRunning()', () => doomed.isRunning(), String), false,
    'isRunning() is false after kill (envd /health → 502)');
  await assertRejectsWith(run(doomed, '1+1'), TimeoutError, 'runCode in a killed sandbox (502, §3.1)');
  assert.equal(await sdk('Sandbox.kill(id) again', () => Sandbox.kill(doomed.sandboxId), String), false,
    'a second kill finds no sandbox (404 → false)');
});
