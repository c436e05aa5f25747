// The code interpreter as E2B's (issue #13), through the official SDK against this
// service only (the fake E2B server has no kernels): IPython cell semantics,
// display(), figures and charts streamed in order, PIL, default contexts in
// creation order, many contexts, static ESM imports, Java and R, and a sandbox
// killed during runCode. Run by tests/e2b/run_conformance.py --target service.

import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox, TimeoutError } from '@e2b/code-interpreter';
import { DEBUG, assertRejectsWith, conformance, run, sdk, writeReportAfterSuite } from './harness.mjs';

let sandbox;

before(async () => {
  sandbox = await sdk('Sandbox.create()', () => Sandbox.create(), (s) => `sandboxId=${s.sandboxId}`);
});

after(async () => {
  if (sandbox && !DEBUG) await sdk('kill() (cleanup)', () => sandbox.kill(), String).catch(() => {});
});
writeReportAfterSuite();

const listContexts = (box) => sdk('listCodeContexts()', () => box.listCodeContexts(),
  (cs) => cs.map((c) => `${c.language}:${c.id}`).join(' '));

const ok = (execution) => {
  assert.equal(execution.error, undefined, `no error (${execution.error?.name}: ${execution.error?.value})`);
  return execution;
};

conformance('a new sandbox lists its default python and javascript contexts first, then created ones', async () => {
  const before = await listContexts(sandbox);
  assert.deepEqual(before.slice(0, 2).map((c) => c.language), ['python', 'javascript'],
    'the defaults, in that order, from the start');
  const created = await sdk("createCodeContext({language: 'python'})",
    () => sandbox.createCodeContext({ language: 'python' }), (c) => JSON.stringify(c));
  const listed = await listContexts(sandbox);
  assert.equal(listed[listed.length - 1].id, created.id, 'the context just created is listed last');
  await sdk('removeCodeContext', () => sandbox.removeCodeContext(created));
});

conformance('a sandbox holds more than a handful of contexts', async () => {
  const created = [];
  try {
    for (let i = 0; i < 12; i += 1) {
      created.push(await sdk(`createCodeContext #${i + 1}`,
        () => sandbox.createCodeContext({ language: 'python' }), (c) => c.id));
    }
    const ids = (await listContexts(sandbox)).map((c) => c.id);
    assert.deepEqual(ids.slice(-created.length), created.map((c) => c.id), 'listed in creation order');
    assert.equal(ok(await run(sandbox, '6 * 7', { context: created[created.length - 1] })).text, '42');
  } finally {
    // The later cases need room for their default contexts.
    for (const context of created) await sdk('removeCodeContext', () => sandbox.removeCodeContext(context));
  }
});

conformance('IPython: common indentation, shell escapes and magics', async () => {
  const indented = ok(await run(sandbox, `
    values = [1, 2, 3]
    if values:
        print(sum(values))
    `, {}, '<indented cell>'));
  assert.deepEqual(indented.logs.stdout, ['6\n'], 'the indented cell ran');
  assert.deepEqual(ok(await run(sandbox, '!pwd')).logs.stdout, ['/home/user\n'], '!pwd is stdout');
  ok(await run(sandbox, '%%writefile magic.txt\nwritten by a cell magic'));
  assert.equal(ok(await run(sandbox, 'lines = !cat magic.txt\nlines[0]')).text, 'written by a cell magic');
  assert.equal(ok(await run(sandbox, '%cd /tmp\n%pwd')).text, '/tmp', '%cd then %pwd');
  ok(await run(sandbox, '%cd /home/user'));
  ok(await run(sandbox, '%matplotlib inline'));
  const timed = ok(await run(sandbox, '%time 2 ** 10'));
  assert.equal(timed.text, '1024');
  assert.match(timed.logs.stdout.join(''), /Wall time/);
  const unknown = await run(sandbox, '%not_a_magic');
  assert.equal(unknown.error?.name, 'UsageError');
});

conformance('display() and a shown figure stream as results before the last value, with a chart', async () => {
  const timeline = [];
  const execution = ok(await run(sandbox, [
    'import matplotlib.pyplot as plt',
    'from IPython.display import display, HTML',
    'display(HTML("<b>first</b>"))',
    'plt.bar(["a", "b"], [3, 5]); plt.title("Bars"); plt.show()',
    'print("after the figure")',
    '"last"',
  ].join('\n'), {
    onResult: (r) => timeline.push(r.isMainResult ? `main:${r.text}` : r.png ? `figure:${r.chart?.type}` : `html:${r.html}`),
    onStdout: (m) => timeline.push(`stdout:${m.line}`),
  }, '<display, plt.show, print, last>'));
  assert.deepEqual(timeline, ['html:<b>first</b>', 'figure:bar', 'stdout:after the figure\n', 'main:last'],
    'the callbacks fired in the order the cell produced them');
  const figure = execution.results.find((r) => r.png);
  assert.deepEqual(figure.chart.elements.map((e) => [e.label, e.value]), [['a', 3], ['b', 5]]);
  assert.equal(figure.chart.title, 'Bars');
});

conformance('PIL: save to a path and show() display the image', async () => {
  const execution = ok(await run(sandbox,
    'from PIL import Image\nimage = Image.new("RGB", (8, 8), "blue")\nimage.save("blue.png")\nimage.show()',
    {}, '<PIL save + show>'));
  assert.equal(execution.results.filter((r) => r.png).length, 2, 'two PNG results');
});

conformance('javascript: static ESM imports', async () => {
  const execution = ok(await run(sandbox,
    "import { readFileSync, writeFileSync } from 'fs'\nimport * as path from 'node:path'\n" +
    "writeFileSync('esm.txt', 'from esm')\nreadFileSync(path.join('.', 'esm.txt'), 'utf8')",
    { language: 'javascript' }, '<import fs and path>'));
  assert.equal(execution.text, 'from esm');
  assert.equal(ok(await run(sandbox, 'typeof readFileSync', { language: 'javascript' })).text, 'function',
    'the imported name stays for later cells');
});

conformance('java and r run by default, with envs and the /home/user cwd', async () => {
  const java = ok(await run(sandbox, 'System.getenv("GREETING") + " " + System.getProperty("user.dir")',
    { language: 'java', envs: { GREETING: 'hello' } }));
  assert.equal(java.text, 'hello /home/user');
  const r = ok(await run(sandbox, 'getwd()', { language: 'r' }));
  assert.equal(r.text, '[1] "/home/user"');
  const renv = ok(await run(sandbox, 'Sys.getenv("GREETING")', { language: 'r', envs: { GREETING: 'hi' } }));
  assert.equal(renv.text, '[1] "hi"');
});

conformance('a sandbox killed during runCode rejects it with TimeoutError, as on E2B', async () => {
  const doomed = await sdk('Sandbox.create() (to kill mid-cell)', () => Sandbox.create(), (s) => `sandboxId=${s.sandboxId}`);
  let started;
  const running = new Promise((resolve) => { started = resolve; });
  const cell = run(doomed, 'import time\nprint("started", flush=True)\ntime.sleep(30)',
    { onStdout: () => started() }, '<sleep 30>');
  await running;
  await sdk('kill() while the cell runs', () => doomed.kill(), String);
  await assertRejectsWith(cell, TimeoutError, 'runCode cut by the kill');
  await assert.rejects(cell, /sandbox was killed while the request was in progress/);
}, { skip: DEBUG && 'debug mode: kill() is a no-op in the SDK (§4)' });
