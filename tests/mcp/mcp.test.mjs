// The MCP server at /mcp, driven by the official MCP TypeScript SDK client
// (@modelcontextprotocol/sdk, pinned in package.json) against the real service:
// initialize, tools/list, every tool, a stateful sequence, tool errors, and hostile
// transport input (raw fetch). Runs on Debian's Node 18: `node --test mcp.test.mjs`.
// CODEEXEC_BIN names the binary (default build/codeexec); CODEEXEC_TEST_ENV adds env.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const openapi = JSON.parse(readFileSync(`${repo}/docs/openapi.json`, 'utf8'));
const KEY = 'mcp-test-key-a';
const OTHER_KEY = 'mcp-test-key-b';
let service;
let base;

/** Starts the binary on a free port; resolves once it logs {"msg": "listening"}. */
function startService() {
  const env = {
    PATH: process.env.PATH,
    PORT: '0',
    HOST: '127.0.0.1',
    WARM_POOL_SIZE: '0',
    API_KEYS: `${KEY},${OTHER_KEY}`,
    KEY_RATE_LIMIT_RPS: '1000',
    KEY_RATE_LIMIT_BURST: '1000',
    ...JSON.parse(process.env.CODEEXEC_TEST_ENV ?? '{}'),
  };
  const bin = process.env.CODEEXEC_BIN ?? `${repo}/build/codeexec`;
  const proc = spawn(bin, [], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const log = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line in 60 s:\n${log.join('\n')}`)), 60000);
    let buffered = '';
    proc.stderr.on('data', (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        log.push(line);
        try {
          const rec = JSON.parse(line);
          if (rec.msg === 'listening' && Number.isInteger(rec.port)) {
            clearTimeout(timer);
            resolve({ proc, port: rec.port, log });
          }
        } catch {}
      }
    });
    proc.on('exit', (code) => reject(new Error(`service exited with ${code}:\n${log.join('\n')}`)));
  });
}

async function connect(key = KEY) {
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  const client = new Client({ name: 'codeexec-mcp-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

/** A raw POST /mcp (for what the SDK would never send). */
async function rawPost(body, headers = {}) {
  const res = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

const textOf = (result) => result.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');

before(async () => {
  service = await startService();
  base = `http://127.0.0.1:${service.port}`;
});

after(async () => {
  if (!service) return;
  const exited = new Promise((resolve) => service.proc.on('exit', resolve));
  service.proc.kill('SIGTERM');
  const code = await exited;
  assert.equal(code, 0, `service exit code ${code}`);
});

test('initialize negotiates the protocol and opens a session', async () => {
  const { client, transport } = await connect();
  assert.equal(client.getServerVersion().name, 'codeexec');
  assert.ok(client.getServerCapabilities().tools, 'tools capability');
  assert.match(transport.sessionId, /^[0-9a-f]{32}$/);
  assert.ok(client.getInstructions().includes('run_code'));
  await client.ping();
  await client.close();
});

test('tools/list: eight tools whose input schemas come from docs/openapi.json', async () => {
  const { client } = await connect();
  const { tools } = await client.listTools();
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  assert.deepEqual(Object.keys(byName).sort(), [
    'create_sandbox', 'kill_sandbox', 'list_files', 'list_sandboxes', 'read_file',
    'run_code', 'run_code_in_sandbox', 'write_file',
  ]);
  const exec = openapi.components.schemas.ExecuteRequest;
  const run = byName.run_code.inputSchema;
  assert.equal(run.type, 'object');
  assert.deepEqual(Object.keys(run.properties).sort(), Object.keys(exec.properties).sort());
  assert.deepEqual(run.required, ['code']);
  // $refs are inlined: the limits' fields are the document's Limits.
  assert.deepEqual(Object.keys(run.properties.limits.properties).sort(),
    Object.keys(openapi.components.schemas.Limits.properties).sort());
  assert.deepEqual(run.properties.language.enum, openapi.components.schemas.Language.enum);
  const inSandbox = byName.run_code_in_sandbox.inputSchema;
  assert.deepEqual(inSandbox.required.sort(), ['code', 'sandboxId']);
  assert.ok(inSandbox.properties.contextId, 'contextId from SandboxExecuteRequest');
  assert.deepEqual(byName.write_file.inputSchema.required.sort(), ['content', 'path', 'sandboxId']);
  assert.equal(byName.list_sandboxes.annotations.readOnlyHint, true);
  await client.close();
});

test('run_code: output, a rich PNG result as image content, the verdict', async () => {
  const { client } = await connect();
  const code = [
    'import matplotlib.pyplot as plt',
    'print("hello from mcp")',
    'plt.plot([1, 2, 3], [1, 4, 9])',
    'plt.show()',
    '6 * 7',
  ].join('\n');
  const result = await client.callTool({ name: 'run_code', arguments: { code, language: 'python' } });
  assert.equal(result.isError, false, textOf(result));
  assert.ok(textOf(result).includes('hello from mcp'));
  assert.ok(result.content.some((c) => c.type === 'text' && c.text === '42'), textOf(result));
  const image = result.content.find((c) => c.type === 'image');
  assert.ok(image, 'an image content block');
  assert.equal(image.mimeType, 'image/png');
  assert.equal(Buffer.from(image.data, 'base64').subarray(1, 4).toString(), 'PNG');
  assert.equal(result.structuredContent.result.status, 'ok');
  assert.match(textOf(result), /\[verdict\] ok/);
  await client.close();
});

test('run_code: JavaScript, a code error and a timeout are tool errors with the verdict', async () => {
  const { client } = await connect();
  const js = await client.callTool({ name: 'run_code', arguments: { code: 'console.log([1,2].map(n => n * 2).join(","))', language: 'javascript' } });
  assert.equal(js.isError, false, textOf(js));
  assert.ok(textOf(js).includes('2,4'));

  const failed = await client.callTool({ name: 'run_code', arguments: { code: 'print("before")\n1/0' } });
  assert.equal(failed.isError, true);
  assert.ok(textOf(failed).includes('before'));
  assert.match(textOf(failed), /ZeroDivisionError/);
  assert.match(textOf(failed), /Traceback|line/);
  assert.equal(failed.structuredContent.result.status, 'error');

  const slow = await client.callTool({ name: 'run_code', arguments: { code: 'import time\ntime.sleep(30)', timeout: 500 } });
  assert.equal(slow.isError, true);
  assert.equal(slow.structuredContent.result.status, 'timeout');
  assert.match(textOf(slow), /TimeoutError/);
  await client.close();
});

test('tool arguments are checked by the REST validation: tool errors, not protocol errors', async () => {
  const { client } = await connect();
  const cases = [
    [{ name: 'run_code', arguments: {} }, /invalid_request: `code` is required/],
    [{ name: 'run_code', arguments: { code: 'x', language: 'cobol' } }, /unsupported_language/],
    [{ name: 'run_code', arguments: { code: 'x', timeout: -1 } }, /`timeout` must be an integer/],
    [{ name: 'run_code', arguments: { code: 'x', limits: { memoryMb: 'lots' } } }, /limits.memoryMb/],
    [{ name: 'run_code', arguments: { code: 'x', interactive: true } }, /interactive/],
    [{ name: 'run_code_in_sandbox', arguments: { code: 'x' } }, /`sandboxId` \(a string\) is required/],
    [{ name: 'run_code_in_sandbox', arguments: { code: 'x', sandboxId: 'nope' } }, /sandbox_not_found/],
    [{ name: 'kill_sandbox', arguments: { sandboxId: 'nope' } }, /sandbox_not_found/],
    [{ name: 'read_file', arguments: { sandboxId: 'nope' } }, /`path` \(a string\) is required/],
    [{ name: 'create_sandbox', arguments: { timeout: 'soon' } }, /`timeout` must be an integer/],
  ];
  for (const [call, expected] of cases) {
    const result = await client.callTool(call);
    assert.equal(result.isError, true, JSON.stringify(call));
    assert.match(textOf(result), expected, JSON.stringify(call));
  }
  await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), (e) =>
    e instanceof McpError && e.code === -32602 && /Unknown tool: no_such_tool; tools: run_code/.test(e.message));
  await client.close();
});

test('a stateful sandbox: create, run twice (state kept), files, list, kill', async () => {
  const { client } = await connect();
  const created = await client.callTool({ name: 'create_sandbox', arguments: { language: 'python', timeout: 120 } });
  assert.equal(created.isError, false, textOf(created));
  const sandboxId = created.structuredContent.sandboxId;
  assert.ok(sandboxId);
  try {
    const first = await client.callTool({ name: 'run_code_in_sandbox', arguments: { sandboxId, code: 'x = 41' } });
    assert.equal(first.isError, false, textOf(first));
    const second = await client.callTool({ name: 'run_code_in_sandbox', arguments: { sandboxId, code: 'x + 1' } });
    assert.ok(second.content.some((c) => c.type === 'text' && c.text === '42'), textOf(second));

    const wrote = await client.callTool({ name: 'write_file', arguments: { sandboxId, path: 'notes/a.txt', content: 'héllo\n' } });
    assert.equal(wrote.isError, false, textOf(wrote));
    assert.equal(wrote.structuredContent.size, Buffer.byteLength('héllo\n'));
    const read = await client.callTool({ name: 'read_file', arguments: { sandboxId, path: 'notes/a.txt' } });
    assert.deepEqual(read.content, [{ type: 'text', text: 'héllo\n' }]);
    const seen = await client.callTool({ name: 'run_code_in_sandbox', arguments: { sandboxId, code: 'print(open("notes/a.txt").read(), end="")' } });
    assert.ok(textOf(seen).startsWith('héllo'), textOf(seen));

    const png = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.from([0, 1, 2, 255])]);
    await client.callTool({ name: 'write_file', arguments: { sandboxId, path: '/tmp/p.png', content: png.toString('base64'), encoding: 'base64' } });
    const image = await client.callTool({ name: 'read_file', arguments: { sandboxId, path: '/tmp/p.png' } });
    assert.equal(image.content[0].type, 'image');
    assert.deepEqual(Buffer.from(image.content[0].data, 'base64'), png);
    await client.callTool({ name: 'write_file', arguments: { sandboxId, path: 'b.bin', content: Buffer.from([0xff, 0xfe, 0]).toString('base64'), encoding: 'base64' } });
    const blob = await client.callTool({ name: 'read_file', arguments: { sandboxId, path: 'b.bin' } });
    assert.equal(blob.content[0].type, 'resource');
    assert.equal(blob.content[0].resource.blob, Buffer.from([0xff, 0xfe, 0]).toString('base64'));
    const badBase64 = await client.callTool({ name: 'write_file', arguments: { sandboxId, path: 'c', content: '***', encoding: 'base64' } });
    assert.equal(badBase64.isError, true);

    const listed = await client.callTool({ name: 'list_files', arguments: { sandboxId } });
    const names = listed.structuredContent.entries.map((e) => e.name);
    assert.ok(names.includes('notes') && names.includes('b.bin'), names.join(','));
    const outside = await client.callTool({ name: 'read_file', arguments: { sandboxId, path: '/etc/passwd' } });
    assert.equal(outside.isError, true);
    assert.match(textOf(outside), /outside_workspace/);

    const sandboxes = await client.callTool({ name: 'list_sandboxes', arguments: {} });
    assert.ok(sandboxes.structuredContent.sandboxes.some((s) => s.sandboxId === sandboxId));
    // Another key sees nothing of it.
    const other = await connect(OTHER_KEY);
    const theirs = await other.client.callTool({ name: 'run_code_in_sandbox', arguments: { sandboxId, code: 'x' } });
    assert.match(textOf(theirs), /sandbox_not_found/);
    await other.client.close();
  } finally {
    const killed = await client.callTool({ name: 'kill_sandbox', arguments: { sandboxId } });
    assert.equal(killed.isError, false, textOf(killed));
  }
  const gone = await client.callTool({ name: 'run_code_in_sandbox', arguments: { sandboxId, code: 'x' } });
  assert.match(textOf(gone), /sandbox_not_found/);
  await client.close();
});

test('sessions: required, bound to their key, ended by DELETE', async () => {
  const { client, transport } = await connect();
  const sessionId = transport.sessionId;
  const list = { jsonrpc: '2.0', id: 7, method: 'tools/list' };
  const missing = await rawPost(list);
  assert.equal(missing.status, 400);
  assert.match(missing.body.error.message, /Mcp-Session-Id header is missing/);
  const unknown = await rawPost(list, { 'mcp-session-id': 'f'.repeat(32) });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, -32001);
  const otherKey = await rawPost(list, { 'mcp-session-id': sessionId, authorization: `Bearer ${OTHER_KEY}` });
  assert.equal(otherKey.status, 404, 'a session belongs to its key');
  const ok = await rawPost(list, { 'mcp-session-id': sessionId });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.id, 7);
  assert.equal(ok.body.result.tools.length, 8);

  await transport.terminateSession();
  const ended = await rawPost(list, { 'mcp-session-id': sessionId });
  assert.equal(ended.status, 404);
  await client.close();
});

test('hostile transport input gets JSON-RPC errors with clear messages', async () => {
  const { client, transport } = await connect();
  const sid = { 'mcp-session-id': transport.sessionId };
  const expect = async (body, headers, status, code, message) => {
    const res = await rawPost(body, headers);
    assert.equal(res.status, status, JSON.stringify(res.body));
    if (code !== undefined) {
      assert.equal(res.body.jsonrpc, '2.0');
      assert.equal(res.body.error.code, code, JSON.stringify(res.body));
      assert.match(res.body.error.message, message);
    }
  };
  await expect('{"jsonrpc": "2.0", "id": 1, "method": ', sid, 400, -32700, /Parse error/);
  await expect([{ jsonrpc: '2.0', id: 1, method: 'ping' }], sid, 400, -32600, /batches/);
  await expect({ id: 1, method: 'ping' }, sid, 400, -32600, /"jsonrpc": "2.0"/);
  await expect({ jsonrpc: '2.0', id: { x: 1 }, method: 'ping' }, sid, 400, -32600, /`id`/);
  await expect({ jsonrpc: '2.0', id: 1, method: 42 }, sid, 400, -32600, /`method`/);
  await expect({ jsonrpc: '2.0', id: 1 }, sid, 400, -32600, /`method` is missing/);
  await expect({ jsonrpc: '2.0', id: 1, method: 'ping', params: [1] }, sid, 400, -32602, /params/);
  await expect({ jsonrpc: '2.0', id: 1, method: 'resources/list' }, sid, 200, -32601, /Method not found/);
  await expect({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: {} }, sid, 200, -32602, /needs `name`/);
  await expect({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'run_code', arguments: 'x' } }, sid, 200, -32602, /arguments/);
  await expect({ jsonrpc: '2.0', id: 1, method: 'ping' }, { ...sid, 'mcp-protocol-version': '1999-01-01' }, 400, -32600, /Unsupported MCP-Protocol-Version/);
  await expect({ jsonrpc: '2.0', id: 1, method: 'ping' }, { ...sid, 'content-type': 'text/plain' }, 415, -32600, /application\/json/);
  await expect({ jsonrpc: '2.0', method: 'notifications/initialized' }, sid, 202);
  await expect({ jsonrpc: '2.0', id: 5, result: {} }, sid, 202);
  const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'run_code', arguments: { code: 'x'.repeat(9 << 20) } } });
  await expect(big, sid, 413, -32600, /at most 8388608/);
  // An initialize for a revision it does not know is answered with its newest.
  const init = await rawPost({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2024-01-01', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
  assert.equal(init.status, 200);
  assert.equal(init.body.result.protocolVersion, '2025-11-25');
  assert.match(init.headers.get('mcp-session-id'), /^[0-9a-f]{32}$/);
  // Without a key: 401 with WWW-Authenticate; GET offers no stream.
  const anonymous = await fetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer');
  const get = await fetch(`${base}/mcp`, { headers: { authorization: `Bearer ${KEY}`, accept: 'text/event-stream' } });
  assert.equal(get.status, 405);
  // The service is still well.
  assert.equal((await fetch(`${base}/health`)).status, 200);
  await client.close();
});
