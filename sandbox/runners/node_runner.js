'use strict';
// JavaScript kernel: runs cells as scripts in Node's main context (see PROTOCOL.md).
//
// Started as `/usr/bin/node [--max-old-space-size=N] node_runner.js`. Requests
// arrive on fd 3 (read asynchronously), events leave on fd 4 with blocking
// writes, so output streams even while a cell's synchronous loop holds the
// event loop. No npm packages.
//
// Cells run in the main context (vm.Script#runInThisContext), as in Node's own
// REPL and in ijavascript (E2B's JavaScript kernel), not in a vm.createContext
// sandbox: a separate context has its own Object, Array, Error..., so values
// crossing between user code and Node's modules fail `instanceof` checks (an
// fs error is not `instanceof Error`), which breaks ordinary code and libraries.

const { EventEmitter } = require('events');
const fs = require('fs');
const net = require('net');
const path = require('path');
const timers = require('timers');
const util = require('util');
const vm = require('vm');
const { createRequire, SourceMap } = require('module');
const { StringDecoder } = require('string_decoder');

const REQUEST_FD = 3;
const EVENT_FD = 4;
const MAX_FRAME = 64 * 1024 * 1024;
const FLUSH_DELAY_MS = 20; // a partial line waits at most this long
const MAX_TEXT = 1024 * 1024; // UTF-16 units per stdout/stderr event, keeps frames far below MAX_FRAME
const MAX_ERROR_TEXT = 1024 * 1024; // kept of an error's value and traceback
const INTERRUPTED = 'ERR_SCRIPT_EXECUTION_INTERRUPTED'; // Node's code for breakOnSigint

// User code shares this context and may replace these globals.
const { stringify } = JSON;
const NativePromise = Promise;

// ---- events (fd 4) ----------------------------------------------------------

let channelBroken = false;
const pause = new Int32Array(new SharedArrayBuffer(4)); // for a 1 ms blocking wait

// Lone surrogates would be sent as \udXXX escapes that strict JSON parsers reject.
// String.prototype.toWellFormed arrived in Node 20; Debian 12 ships Node 18.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const toWellFormed = String.prototype.toWellFormed
  ? (s) => s.toWellFormed()
  : (s) => s.replace(LONE_SURROGATE, '\uFFFD');

function wellFormed(key, value) {
  return typeof value === 'string' ? toWellFormed(value) : value;
}

function writeFrame(event) {
  if (channelBroken) return;
  let payload = Buffer.from(stringify(event, wellFormed));
  if (payload.length > MAX_FRAME && event.type === 'result') {
    const text = `<result of ${payload.length} bytes not sent: larger than the 64 MiB frame limit>`;
    payload = Buffer.from(stringify({ type: 'result', text, extra: {}, is_main_result: event.is_main_result }));
  }
  // One buffer, one write: a frame is never split between two writes that an
  // interrupt (breakOnSigint terminates JavaScript anywhere) could separate.
  const frame = Buffer.allocUnsafe(4 + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  payload.copy(frame, 4);
  let offset = 0;
  while (offset < frame.length) {
    try {
      offset += fs.writeSync(EVENT_FD, frame, offset);
    } catch (e) {
      if (e.code === 'EAGAIN') { // fd 4 should be blocking; cope if it is not
        Atomics.wait(pause, 0, 0, 1);
        continue;
      }
      channelBroken = true; // the host closed the event channel: nobody is listening
      process.exit(1);
    }
  }
}

// stdout/stderr text is coalesced: at most one stream has pending text, sent
// when a write ends a line, when the other stream or any other event is
// written, and FLUSH_DELAY_MS after it was first written. The timer cannot
// fire while a synchronous loop runs; the next send() flushes it then.
const pending = { stream: null, text: '', timer: null };

function writeOutput(stream, text) {
  if (!text) return;
  if (pending.text && pending.stream !== stream) flushOutput();
  pending.stream = stream;
  const newline = text.lastIndexOf('\n');
  if (newline >= 0) {
    pending.text += text.slice(0, newline + 1);
    flushOutput();
    text = text.slice(newline + 1);
  }
  if (!text) return;
  pending.text += text;
  if (pending.text.length >= MAX_TEXT) flushOutput();
  else if (!pending.timer) pending.timer = timers.setTimeout(flushOutput, FLUSH_DELAY_MS).unref();
}

function flushOutput() {
  if (pending.timer) {
    timers.clearTimeout(pending.timer);
    pending.timer = null;
  }
  const { text } = pending;
  pending.text = '';
  for (let start = 0; start < text.length;) {
    let end = Math.min(start + MAX_TEXT, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1; // keep surrogate pairs whole
    writeFrame({ type: pending.stream, text: text.slice(start, end) });
    start = end;
  }
}

function send(event) {
  flushOutput();
  writeFrame(event);
}

// process.stdout/stderr (and so the global console, which binds to them on
// first use) become streams of events. Replacing the getters before anything
// touches them also keeps Node from making the fd 1/2 pipes non-blocking,
// which child processes sharing those pipes would notice.
//
// Not a stream.Writable: an interrupt (breakOnSigint) can stop JavaScript
// anywhere, and stopped inside Writable's bookkeeping it leaves the stream
// "writing" forever, buffering all later output. This has no such state.
class OutputStream extends EventEmitter {
  constructor(name, fd) {
    super();
    this.name = name;
    this.fd = fd; // code writing to the descriptor itself reaches the raw pipe
    this.writable = true;
    this.decoder = new StringDecoder('utf8');
  }

  write(chunk, encoding, callback) {
    if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
    let text;
    if (typeof chunk === 'string') {
      text = !encoding || /^utf-?8$/i.test(encoding) ? chunk : this.decoder.write(Buffer.from(chunk, encoding));
    } else if (ArrayBuffer.isView(chunk)) {
      text = this.decoder.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } else {
      throw new TypeError(`The "chunk" argument must be of type string or an instance of Buffer or Uint8Array`);
    }
    writeOutput(this.name, text);
    // null, not undefined: console's write callback treats anything else as an error.
    if (typeof callback === 'function') process.nextTick(callback, null);
    return true;
  }

  end(chunk, encoding, callback) { // writes, but does not close: neither does process.stdout
    if (typeof chunk === 'function') [chunk, callback] = [undefined, chunk];
    else if (typeof encoding === 'function') [encoding, callback] = [undefined, encoding];
    if (chunk !== undefined && chunk !== null) this.write(chunk, encoding);
    if (typeof callback === 'function') process.nextTick(callback, null);
    return this;
  }
}

for (const [name, fd] of [['stdout', 1], ['stderr', 2]]) {
  const stream = new OutputStream(name, fd);
  Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => stream });
}


// ---- a cell's stdin -----------------------------------------------------------
// Node cannot dup2 a FIFO onto fd 0, so the cell's stdin (PROTOCOL.md) is
// opened three times and the ways of reading fd 0 are redirected while the
// cell runs: process.stdin (a stream on its own descriptor, so readline works),
// fs.readSync/readFileSync of fd 0 or '/dev/stdin' (a non-blocking descriptor
// polled every few ms, so SIGINT can still stop the cell), and child_process
// stdio 'inherit' of fd 0 (a blocking descriptor, the child's own fd 0).
// The wrappers are installed once and pass everything through between cells,
// so functions captured by earlier cells follow the current cell too.

const STDIN_POLL_MS = 5;
let cellStdin = null; // {syncFd, childFd, streamFd, isFifo, stream}
const originalStdin = Object.getOwnPropertyDescriptor(process, 'stdin');
const nativeReadSync = fs.readSync;
const nativeReadFileSync = fs.readFileSync;

function openCellStdin(file) {
  const nonBlocking = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK;
  const fds = [fs.openSync(file, nonBlocking)]; // never waits for a writer
  try {
    const stat = fs.fstatSync(fds[0]);
    if (stat.isDirectory()) throw new Error(`${file} is a directory`);
    fds.push(fs.openSync(file, nonBlocking));
    // A blocking descriptor, for child processes. Opening a FIFO for reading
    // waits for a writer, and the host may already have closed its own (end of
    // file): a writer of ours, held only while opening, spares the wait. It also
    // makes epoll report the hangup to the stream's descriptor, opened before it:
    // Linux does not for a reader that never saw a writer.
    const again = `/proc/self/fd/${fds[0]}`;
    const writer = stat.isFIFO() ? fs.openSync(again, fs.constants.O_RDWR | fs.constants.O_NONBLOCK) : null;
    try {
      fds.push(fs.openSync(again, fs.constants.O_RDONLY));
    } finally {
      if (writer !== null) fs.closeSync(writer);
    }
    try {
      fs.unlinkSync(file);
    } catch {
      // best effort
    }
    return { syncFd: fds[0], streamFd: fds[1], childFd: fds[2], isFifo: stat.isFIFO(), stream: null };
  } catch (e) {
    for (const fd of fds) fs.closeSync(fd);
    throw e;
  }
}

function closeCellStdin() {
  const stdin = cellStdin;
  cellStdin = null;
  if (!stdin) return;
  if (stdin.stream) stdin.stream.destroy(); // closes streamFd
  else fs.closeSync(stdin.streamFd);
  fs.closeSync(stdin.syncFd);
  fs.closeSync(stdin.childFd);
}

function cellStdinStream(stdin) {
  if (!stdin.stream) {
    stdin.stream = stdin.isFifo
      ? new net.Socket({ fd: stdin.streamFd, readable: true, writable: false, manualStart: true })
      : fs.createReadStream(null, { fd: stdin.streamFd });
    stdin.stream.fd = 0; // as process.stdin.fd: fs.readSync(process.stdin.fd) reads the cell's stdin too
    stdin.stream.isTTY = false;
  }
  return stdin.stream;
}

Object.defineProperty(process, 'stdin', {
  configurable: true,
  enumerable: true,
  get() {
    if (cellStdin) return cellStdinStream(cellStdin);
    return originalStdin.get ? originalStdin.get.call(process) : originalStdin.value;
  },
});

const isStdinFd = (fd) => cellStdin !== null && fd === 0;
const isStdinPath = (file) => cellStdin !== null &&
  (file === 0 || file === '/dev/stdin' || file === '/proc/self/fd/0' || file === '/dev/fd/0');

// Blocks like a read of a blocking fd 0, but in slices, so SIGINT can interrupt it.
function readStdinSync(stdin, args) {
  for (;;) {
    try {
      return Reflect.apply(nativeReadSync, fs, [stdin.syncFd, ...args]);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(pause, 0, 0, STDIN_POLL_MS);
    }
  }
}

fs.readSync = function readSync(fd, ...args) {
  if (isStdinFd(fd)) return readStdinSync(cellStdin, args);
  return Reflect.apply(nativeReadSync, this, [fd, ...args]);
};

fs.readFileSync = function readFileSync(file, options) {
  if (!isStdinPath(file)) return Reflect.apply(nativeReadFileSync, this, [file, options]);
  const stdin = cellStdin;
  const chunks = [];
  for (;;) {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    const n = readStdinSync(stdin, [chunk, 0, chunk.length, null]);
    if (n === 0) break;
    chunks.push(chunk.subarray(0, n));
  }
  const data = Buffer.concat(chunks);
  const encoding = typeof options === 'string' ? options : options && options.encoding;
  return encoding ? data.toString(encoding) : data;
};

// child_process: a child whose stdin would be the runner's fd 0 ('inherit', 0,
// process.stdin; fork's default) gets the cell's stdin instead.
function childStdio(stdio, forkDefault) {
  if (stdio === undefined && forkDefault) return [cellStdin.childFd, 1, 2, 'ipc'];
  if (stdio === 'inherit') return [cellStdin.childFd, 1, 2];
  if (Array.isArray(stdio) && (stdio[0] === 'inherit' || stdio[0] === 0 ||
      (cellStdin.stream !== null && stdio[0] === cellStdin.stream))) {
    return [cellStdin.childFd, ...stdio.slice(1)];
  }
  return stdio;
}

function patchChildProcess() {
  const childProcess = require('child_process');
  // name -> whether its second argument may be an args array
  const functions = { spawn: true, spawnSync: true, execFileSync: true, fork: true, execSync: false };
  for (const [name, hasArgs] of Object.entries(functions)) {
    const original = childProcess[name];
    childProcess[name] = {
      [name](...args) {
        if (cellStdin) {
          const at = hasArgs && (Array.isArray(args[1]) || args[1] === undefined || args[1] === null) ? 2 : 1;
          const options = args[at];
          if (options === undefined || options === null || typeof options === 'object') {
            const forkDefault = name === 'fork' && !(options && options.silent);
            const stdio = childStdio(options ? options.stdio : undefined, forkDefault);
            if (stdio !== (options ? options.stdio : undefined)) {
              if (at === 2 && args[1] === undefined) args[1] = [];
              args[at] = { ...options, stdio };
            }
          }
        }
        return Reflect.apply(original, this, args);
      },
    }[name];
  }
}

// ---- REPL transforms ----------------------------------------------------------
// A cell is a script, so its top-level let/const/class would create bindings
// that no later cell can declare again, and top-level await is a syntax error.
// As Node's REPL does, cells are rewritten, here guided by a small tokenizer
// (strings, templates, comments, regex literals, bracket depth) since no parser
// is available:
//  - top-level let/const/class become var declarations;
//  - a cell using top-level await runs in an async function: its top-level
//    declarations become assignments to hoisted vars, its function declarations
//    are copied to globalThis, and its last expression statement is returned.
// Every rewrite is compiled before use; one that does not compile is dropped
// (falling back to the cell as written, or to a plain async wrapper), so a
// tokenizer mistake can cost a convenience but not break a valid cell.

const WHITESPACE = /[^\S\r\n\u2028\u2029]+/y;
const NAME = /[A-Za-z_$#\u0080-\uffff][\w$\u0080-\uffff]*/y;
const NUMBER = /(?:0[xXoObB][\da-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)n?/y;
const PUNCTUATOR = /(?:>>>=|\.\.\.|===|!==|\*\*=|<<=|>>=|>>>|&&=|\|\|=|\?\?=|=>|==|!=|<=|>=|&&|\|\||\?\?|\?\.(?!\d)|\+\+|--|[-+*/%&|^]=|\*\*|<<|>>|[{}()[\];,<>+\-*/%&|^!~?:=.@])/y;
const NEWLINE = /[\n\r\u2028\u2029]/;
const REST_OF_LINE = /[^\n\r\u2028\u2029]*/y;
const REGEX_FLAGS = /[a-z]*/y;
const OPENERS = new Set(['{', '(', '[']);
// Keywords after which an expression (so a regex literal) may follow, and
// which therefore do not end an expression.
const OPERATOR_KEYWORDS = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void',
  'throw', 'case', 'do', 'else', 'extends', 'yield', 'await']);
// Names that, at the start of a line, continue the previous statement.
const CONTINUING_NAMES = new Set(['in', 'instanceof', 'else', 'catch', 'finally', 'while']);
// Statements whose value is not an expression's (never turned into a return).
const STATEMENT_KEYWORDS = new Set(['var', 'let', 'const', 'function', 'class', 'if', 'for', 'while', 'do',
  'try', 'switch', 'return', 'throw', 'break', 'continue', 'import', 'export', 'debugger', 'with']);

function isNewline(c) {
  return c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029';
}

function scanTemplate(src, i) {
  // From inside a template literal to just after its closing ` (open: false)
  // or after the next ${ (open: true).
  while (i < src.length) {
    const c = src[i];
    if (c === '\\') i += 2;
    else if (c === '`') return { end: i + 1, open: false };
    else if (c === '$' && src[i + 1] === '{') return { end: i + 2, open: true };
    else i += 1;
  }
  return { end: src.length, open: false };
}

function regexAllowed(prev) {
  if (!prev) return true;
  if (prev.type === 'name') return OPERATOR_KEYWORDS.has(prev.value);
  if (prev.type !== 'punct') return false;
  return ![')', ']', '++', '--'].includes(prev.value);
}

// Tokens: {type: name|num|str|tmpl|regex|punct, value, start, end, nl (a line
// break precedes it), depth (brackets around it; a bracket has the depth of
// its contents' parent), match (index of the other bracket)}. A template is
// one token; the tokens of its ${} parts are nested inside it.
function tokenize(src) {
  const tokens = [];
  const stack = []; // indexes of open brackets and of templates inside ${
  let i = 0;
  let nl = false;
  const add = (type, value, start, end) => {
    tokens.push({ type, value, start, end, nl, depth: stack.length });
    nl = false;
  };
  const match = (re) => {
    re.lastIndex = i;
    return re.exec(src);
  };
  while (i < src.length) {
    const c = src[i];
    let m;
    if (isNewline(c)) {
      nl = true;
      i += 1;
    } else if ((m = match(WHITESPACE))) {
      i += m[0].length;
    } else if (src.startsWith('//', i)) {
      i += match(REST_OF_LINE)[0].length;
    } else if (src.startsWith('/*', i)) {
      const close = src.indexOf('*/', i + 2);
      const end = close < 0 ? src.length : close + 2;
      if (NEWLINE.test(src.slice(i, end))) nl = true;
      i = end;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c && !isNewline(src[j])) j += src[j] === '\\' ? 2 : 1;
      add('str', src.slice(i, j + 1), i, j + 1);
      i = j + 1;
    } else if (c === '`' || (c === '}' && stack.length && tokens[stack[stack.length - 1]].type === 'tmpl')) {
      if (c === '`') add('tmpl', '`', i, i + 1);
      const index = c === '`' ? tokens.length - 1 : stack.pop();
      const { end, open } = scanTemplate(src, i + 1);
      if (open) stack.push(index);
      tokens[index].end = end;
      i = end;
    } else if (c === '/' && regexAllowed(tokens[tokens.length - 1])) {
      let j = i + 1;
      let inClass = false;
      while (j < src.length && !isNewline(src[j]) && (inClass || src[j] !== '/')) {
        if (src[j] === '\\') j += 1;
        else if (src[j] === '[') inClass = true;
        else if (src[j] === ']') inClass = false;
        j += 1;
      }
      REGEX_FLAGS.lastIndex = j + 1;
      const end = j + 1 + REGEX_FLAGS.exec(src)[0].length;
      add('regex', src.slice(i, end), i, end);
      i = end;
    } else if ((/\d/.test(c) || (c === '.' && /\d/.test(src[i + 1] || ''))) && (m = match(NUMBER))) {
      add('num', m[0], i, i + m[0].length);
      i += m[0].length;
    } else if ((m = match(NAME))) {
      add('name', m[0], i, i + m[0].length);
      i += m[0].length;
    } else {
      m = match(PUNCTUATOR);
      const value = m ? m[0] : c;
      if (OPENERS.has(value)) {
        add('punct', value, i, i + 1);
        stack.push(tokens.length - 1);
      } else if ((value === '}' || value === ')' || value === ']') && stack.length) {
        const open = stack.pop();
        add('punct', value, i, i + 1);
        tokens[open].match = tokens.length - 1;
        tokens[tokens.length - 1].match = open;
      } else {
        add('punct', value, i, i + value.length);
      }
      i += value.length;
    }
  }
  return tokens;
}

function endsExpression(t) {
  if (t.type === 'name') return !OPERATOR_KEYWORDS.has(t.value);
  if (t.type === 'punct') return [')', ']', '}', '++', '--'].includes(t.value);
  return true;
}

// Whether the top-level token t, after the top-level token prev, starts a
// statement: after ";", after a closing "}", or where automatic semicolon
// insertion applies (a line break between two tokens that cannot be adjacent).
function startsStatement(t, prev) {
  if (!prev || (prev.type === 'punct' && prev.value === ';')) return true;
  const canStart = t.type === 'name' ? !CONTINUING_NAMES.has(t.value)
    : t.type === 'punct' ? ['{', '++', '--', '!', '~'].includes(t.value)
      : t.type !== 'tmpl';
  if (!canStart) return false;
  if (prev.type === 'punct' && prev.value === '}') return true;
  return t.nl && endsExpression(prev);
}

// The top-level structure of a cell: `top` lists the indexes of depth-0
// tokens, `starts` those that begin a statement.
function topLevel(tokens) {
  const top = [];
  const starts = new Set();
  let prev = null;
  tokens.forEach((t, k) => {
    if (t.depth !== 0) return;
    if (startsStatement(t, prev)) starts.add(k);
    top.push(k);
    prev = t;
  });
  return { top, starts };
}

const isPunct = (t, value) => t !== undefined && t.type === 'punct' && t.value === value;
const isName = (t, value) => t !== undefined && t.type === 'name' && (value === undefined || t.value === value);

// Position in `top` of the last token of the statement starting at position
// p, a final ";" excluded.
function statementEnd(tokens, { top, starts }, p) {
  let q = p + 1;
  while (q < top.length && !starts.has(top[q])) q += 1;
  return isPunct(tokens[top[q - 1]], ';') && q - 1 > p ? q - 2 : q - 1;
}

function isLetDeclaration(tokens, top, p) {
  const next = tokens[top[p + 1]];
  return isPunct(next, '[') || isPunct(next, '{') || (isName(next) && !CONTINUING_NAMES.has(next.value));
}

// Name of the class declared at position p, or undefined.
function className(tokens, top, p) {
  const next = tokens[top[p + 1]];
  return isName(tokens[top[p]], 'class') && isName(next) && next.value !== 'extends' ? next.value : undefined;
}

// Index of the closing brace of the class body of the class at position p.
function classBodyEnd(tokens, top, p) {
  let q = p + 2;
  while (q < top.length && !isPunct(tokens[top[q]], '{')) q += 1;
  if (q === top.length) throw new Error('class without a body');
  return tokens[top[q]].match;
}

// Name of the function declared at position p, or undefined.
function functionName(tokens, top, p) {
  let q = p;
  if (isName(tokens[top[q]], 'async') && isName(tokens[top[q + 1]], 'function') && !tokens[top[q + 1]].nl) q += 1;
  if (!isName(tokens[top[q]], 'function')) return undefined;
  if (isPunct(tokens[top[q + 1]], '*')) q += 1;
  return isName(tokens[top[q + 1]]) ? tokens[top[q + 1]].value : undefined;
}

// Collects the names bound by the identifier or destructuring pattern at
// tokens[i]; returns the index after it.
function bindingNames(tokens, i, names) {
  const pattern = tokens[i];
  if (isName(pattern)) {
    names.push(pattern.value);
    return i + 1;
  }
  if (!(isPunct(pattern, '[') || isPunct(pattern, '{')) || pattern.match === undefined) {
    throw new Error('unsupported binding');
  }
  const close = pattern.match;
  let j = i + 1;
  while (j < close) {
    if (isPunct(tokens[j], ',')) {
      j += 1;
      continue;
    }
    if (isPunct(tokens[j], '...')) {
      j = bindingNames(tokens, j + 1, names);
    } else if (pattern.value === '[') {
      j = bindingNames(tokens, j, names);
    } else {
      const key = tokens[j];
      j = isPunct(key, '[') ? key.match + 1 : j + 1;
      if (isPunct(tokens[j], ':')) j = bindingNames(tokens, j + 1, names);
      else if (isName(key)) names.push(key.value); // shorthand {a}
      else throw new Error('unsupported binding');
    }
    if (isPunct(tokens[j], '=')) { // skip the default value
      do j += 1; while (j < close && !(tokens[j].depth === pattern.depth + 1 && isPunct(tokens[j], ',')));
    }
  }
  return close + 1;
}

function applyEdits(code, edits) {
  let out = code;
  for (const { start, end, text } of edits.sort((a, b) => b.start - a.start)) {
    out = out.slice(0, start) + text + out.slice(end);
  }
  return out;
}

// Top-level let/const/class -> var, keeping columns where it can.
function rewriteLexical(code, tokens) {
  const { top, starts } = topLevel(tokens);
  const edits = [];
  top.forEach((k, p) => {
    const t = tokens[k];
    if (isName(t, 'const')) {
      edits.push({ start: t.start, end: t.end, text: 'var  ' });
    } else if (starts.has(k) && isName(t, 'let') && isLetDeclaration(tokens, top, p)) {
      edits.push({ start: t.start, end: t.end, text: 'var' });
    } else if (starts.has(k) && className(tokens, top, p)) {
      const body = tokens[classBodyEnd(tokens, top, p)];
      edits.push({ start: t.start, end: t.start, text: `var ${className(tokens, top, p)} = ` },
        { start: body.end, end: body.end, text: ';' });
    }
  });
  return applyEdits(code, edits);
}

// The cell as the body of an async function whose result is the cell's value.
function rewriteForAwait(code, tokens, returnLast) {
  const structure = topLevel(tokens);
  const { top, starts } = structure;
  const edits = [];
  const hoisted = [];
  const functions = [];
  let lastStart = 0;
  top.forEach((k, p) => {
    if (!starts.has(k)) return;
    lastStart = p;
    const t = tokens[k];
    if (isName(t, 'var') || isName(t, 'const') || (isName(t, 'let') && isLetDeclaration(tokens, top, p))) {
      // `const {a, b} = f(), c` -> `void ({a, b} = f(), c)` with a, b, c hoisted
      const end = statementEnd(tokens, structure, p);
      bindingNames(tokens, top[p + 1], hoisted);
      for (let q = p + 1; q < end; q += 1) {
        if (isPunct(tokens[top[q]], ',')) bindingNames(tokens, top[q + 1], hoisted);
      }
      const endOffset = tokens[top[end]].end;
      edits.push({ start: t.start, end: t.end, text: 'void (' }, { start: endOffset, end: endOffset, text: ')' });
    } else if (className(tokens, top, p)) {
      const name = className(tokens, top, p);
      const body = tokens[classBodyEnd(tokens, top, p)];
      hoisted.push(name);
      edits.push({ start: t.start, end: t.start, text: `void (${name} = ` },
        { start: body.end, end: body.end, text: ')' });
    } else if (functionName(tokens, top, p)) {
      functions.push(functionName(tokens, top, p)); // hoisted inside the function, so copied first
    }
  });
  const last = tokens[top[lastStart]];
  const isExpression = last !== undefined && !(isName(last) && STATEMENT_KEYWORDS.has(last.value)) &&
    !isPunct(last, '{') && !isPunct(last, ';') && !isPunct(tokens[top[lastStart + 1]], ':') &&
    functionName(tokens, top, lastStart) === undefined;
  if (returnLast && isExpression) {
    const endOffset = tokens[top[statementEnd(tokens, structure, lastStart)]].end;
    edits.push({ start: last.start, end: last.start, text: 'return (' },
      { start: endOffset, end: endOffset, text: ')' });
  }
  const declarations = hoisted.length ? `var ${hoisted.join(', ')}; ` : '';
  const copies = functions.map((name) => `globalThis.${name} = ${name}; `).join('');
  // Everything added before the code stays on its first line, so line numbers hold.
  return `${declarations}(async () => { ${copies}${applyEdits(code, edits)}\n})()`;
}

// `import()` in a cell. Node 21 (and 20.8) hand it to the main context's own loader
// with a constant; Node 18, which Debian 12 ships, has no such constant, so there the
// runner resolves the specifier itself (importForCells, as static imports do); Node 18
// calls such a function only when started with --experimental-vm-modules, which the
// service passes (PROTOCOL.md "Runner start").
const importInCell = vm.constants && vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER !== undefined
  ? vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER
  : (specifier) => importForCells(specifier);

function compile(source, filename) {
  return new vm.Script(source, { filename, importModuleDynamically: importInCell });
}

// ---- static imports ----------------------------------------------------------------
// A script cannot hold `import … from 'm'`, so each top-level static import becomes
// a declaration bound by a dynamic import: `import x, {a as b} from 'm'` ->
// `const {default: x, a: b} = await __codeexecImport('m')`. The cell then uses
// top-level await (rewriteForAwait), so its bindings become globals later cells
// see. __codeexecImport resolves like an ES module of /home/user would: built-ins,
// paths from the working directory, packages from its node_modules (ESM or CJS).

// The clause of the import statement whose `import` is at tokens[i]:
// {names: 'binding pattern', namespace, from (the specifier token), end (index after)}.
function importClause(tokens, i) {
  let j = i + 1;
  const clause = { defaultName: null, namespace: null, named: [] };
  if (tokens[j] && tokens[j].type === 'str') return { clause, specifier: tokens[j], end: j + 1 };
  if (isName(tokens[j]) && tokens[j].value !== 'from') {
    clause.defaultName = tokens[j].value;
    j += 1;
    if (isPunct(tokens[j], ',')) j += 1;
  }
  if (isPunct(tokens[j], '*') && isName(tokens[j + 1], 'as') && isName(tokens[j + 2])) {
    clause.namespace = tokens[j + 2].value;
    j += 3;
  } else if (isPunct(tokens[j], '{')) {
    const close = tokens[j].match;
    if (close === undefined) throw new Error('unclosed import list');
    for (let k = j + 1; k < close; k += 1) {
      if (isPunct(tokens[k], ',')) continue;
      const imported = tokens[k];
      if (!isName(imported) && imported.type !== 'str') throw new Error('unsupported import');
      let local = imported.value;
      if (isName(tokens[k + 1], 'as')) {
        local = tokens[k + 2].value;
        k += 2;
      }
      clause.named.push([imported.type === 'str' ? imported.value : stringify(imported.value), local]);
    }
    j = close + 1;
  }
  if (!isName(tokens[j], 'from') || !tokens[j + 1] || tokens[j + 1].type !== 'str') {
    throw new Error('unsupported import');
  }
  return { clause, specifier: tokens[j + 1], end: j + 2 };
}

function importReplacement({ defaultName, namespace, named }, specifier) {
  const load = `await __codeexecImport(${specifier.value})`;
  if (!defaultName && !namespace && !named.length) return `${load};`;
  if (namespace) {
    return `const ${namespace} = ${load};${defaultName ? ` const ${defaultName} = ${namespace}.default;` : ''}`;
  }
  const parts = named.map(([imported, local]) => `${imported}: ${local}`);
  if (defaultName) parts.unshift(`default: ${defaultName}`);
  return `const {${parts.join(', ')}} = ${load};`;
}

// The cell with its static imports rewritten (line numbers kept), or the cell
// itself if it has none.
function rewriteImports(code, tokens) {
  const { top, starts } = topLevel(tokens);
  const edits = [];
  top.forEach((k, p) => {
    const t = tokens[k];
    const next = tokens[top[p + 1]];
    if (!starts.has(k) || !isName(t, 'import') || isPunct(next, '(') || isPunct(next, '.')) return;
    const { clause, specifier, end } = importClause(tokens, k);
    let stop = end;
    // Import attributes (`with {type: 'json'}`) are not passed on.
    if ((isName(tokens[stop], 'with') || isName(tokens[stop], 'assert')) && isPunct(tokens[stop + 1], '{')) {
      stop = tokens[stop + 1].match + 1;
    }
    const last = tokens[stop - 1];
    const lines = code.slice(t.start, last.end).split(/\r\n|[\n\r\u2028\u2029]/).length - 1;
    edits.push({ start: t.start, end: last.end, text: importReplacement(clause, specifier) + '\n'.repeat(lines) });
  });
  return edits.length ? applyEdits(code, edits) : code;
}

// The entry of a package's exports (or main) an `import` of it loads.
function exportTarget(entry) {
  if (typeof entry === 'string') return entry;
  if (Array.isArray(entry)) return entry.map(exportTarget).find(Boolean);
  if (entry && typeof entry === 'object') {
    for (const condition of ['import', 'node', 'default']) {
      const target = exportTarget(entry[condition]);
      if (target) return target;
    }
  }
  return undefined;
}

// Resolves a bare specifier from the working directory's node_modules, as import would.
function resolvePackage(specifier) {
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  const subpath = specifier.slice(name.length);
  for (let dir = process.cwd(); ; dir = path.dirname(dir)) {
    const root = path.join(dir, 'node_modules', name);
    let manifest = null;
    try {
      manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    } catch {
      manifest = null;
    }
    if (manifest) {
      const exported = manifest.exports;
      let target;
      if (exported !== undefined) {
        const map = typeof exported === 'object' && !Array.isArray(exported) &&
          Object.keys(exported).some((key) => key.startsWith('.')) ? exported : { '.': exported };
        target = exportTarget(map[`.${subpath}`]);
      } else {
        target = subpath || manifest.module || manifest.main || 'index.js';
      }
      if (target) return path.join(root, target);
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

function importForCells(specifier) {
  const { pathToFileURL } = require('url');
  const { builtinModules } = require('module');
  const name = String(specifier);
  if (name.startsWith('node:') || builtinModules.includes(name) || /^[a-z][a-z0-9+.-]*:/i.test(name)) {
    return import(name);
  }
  if (/^\.{0,2}\//.test(name)) return import(pathToFileURL(path.resolve(name)).href);
  let resolved;
  try {
    resolved = globalThis.require.resolve(name); // CommonJS packages and dual ones
  } catch {
    resolved = resolvePackage(name); // packages that only export `import`
  }
  if (!resolved) {
    const error = new Error(`Cannot find package '${name}' imported from ${process.cwd()} ` +
      `(install it there: npm install ${name})`);
    error.code = 'ERR_MODULE_NOT_FOUND';
    return NativePromise.reject(error);
  }
  return import(pathToFileURL(resolved).href);
}

function compileCell(code, filename) {
  let tokens = tokenize(code);
  try {
    const rewritten = rewriteImports(code, tokens);
    if (rewritten !== code) {
      code = rewritten;
      tokens = tokenize(code);
    }
  } catch {
    // an import this rewrite does not know: the cell as written (its syntax error)
  }
  try {
    const rewritten = rewriteLexical(code, tokens);
    if (rewritten !== code) return compile(rewritten, filename);
  } catch {
    // fall back to the cell as written
  }
  try {
    return compile(code, filename);
  } catch (error) {
    if (!(error instanceof SyntaxError) || !tokens.some((t) => isName(t, 'await'))) throw error;
    const versions = [
      () => rewriteForAwait(code, tokens, true),
      () => rewriteForAwait(code, tokens, false),
      () => `(async () => {${code}\n})()`,
    ];
    for (const version of versions) {
      try {
        return compile(version(), filename);
      } catch {
        // try the next, simpler version
      }
    }
    throw error; // the cell's own syntax error, with its own positions
  }
}


// ---- TypeScript ------------------------------------------------------------------
// With --typescript, a cell is first stripped of its types by Debian's
// node-typescript (ts.transpileModule: syntax only, no type checking), then
// handled like a JavaScript cell. ES2022 output keeps let/const, classes and
// top-level await for the REPL rewrites above; imports become require() calls
// bound to the imported names (so later cells see them) and `export` is dropped.

const TYPESCRIPT_PATHS = ['/usr/share/nodejs/typescript', 'typescript'];
let ts = null;

function loadTypeScript() {
  for (const candidate of TYPESCRIPT_PATHS) {
    try {
      return require(candidate);
    } catch {
      // try the next
    }
  }
  throw new Error('TypeScript is not installed (Debian package node-typescript)');
}

function importDefault(module) {
  return module && module.__esModule ? module.default : module;
}

// Import and export declarations -> plain statements a script can run.
function replTransformer() {
  const f = ts.factory;
  const callRequire = (specifier) => f.createCallExpression(f.createIdentifier('require'), undefined, [specifier]);
  const constant = (name, init) => f.createVariableStatement(undefined, f.createVariableDeclarationList(
    [f.createVariableDeclaration(name, undefined, undefined, init)], ts.NodeFlags.Const));
  const withoutExport = (statement) => {
    const modifiers = ts.canHaveModifiers(statement) ? ts.getModifiers(statement) : undefined;
    if (!modifiers || !modifiers.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) return statement;
    let kept = modifiers.filter((m) => m.kind !== ts.SyntaxKind.ExportKeyword && m.kind !== ts.SyntaxKind.DefaultKeyword);
    kept = kept.length ? kept : undefined;
    const s = statement;
    if (ts.isVariableStatement(s)) return f.updateVariableStatement(s, kept, s.declarationList);
    if (ts.isFunctionDeclaration(s)) {
      return f.updateFunctionDeclaration(s, kept, s.asteriskToken, s.name, s.typeParameters, s.parameters, s.type, s.body);
    }
    if (ts.isClassDeclaration(s)) {
      return f.updateClassDeclaration(s, kept, s.name, s.typeParameters, s.heritageClauses, s.members);
    }
    if (ts.isEnumDeclaration(s)) return f.updateEnumDeclaration(s, kept, s.name, s.members);
    return statement; // interfaces, types, namespaces: erased or kept as TypeScript emits them
  };
  return () => (sourceFile) => {
    const statements = [];
    for (const statement of sourceFile.statements) {
      if (ts.isImportDeclaration(statement)) {
        const clause = statement.importClause;
        const specifier = statement.moduleSpecifier;
        if (!clause) {
          statements.push(f.createExpressionStatement(callRequire(specifier)));
          continue;
        }
        if (clause.isTypeOnly) continue;
        if (clause.name) {
          statements.push(constant(clause.name.text, f.createCallExpression(
            f.createIdentifier('__tsImportDefault'), undefined, [callRequire(specifier)])));
        }
        const bindings = clause.namedBindings;
        if (bindings && ts.isNamespaceImport(bindings)) {
          statements.push(constant(bindings.name.text, callRequire(specifier)));
        } else if (bindings) {
          const elements = bindings.elements.filter((e) => !e.isTypeOnly).map((e) => f.createBindingElement(
            undefined, e.propertyName ? e.propertyName.text : undefined, e.name.text));
          if (elements.length) statements.push(constant(f.createObjectBindingPattern(elements), callRequire(specifier)));
        }
      } else if (ts.isImportEqualsDeclaration(statement)) {
        const reference = statement.moduleReference;
        if (statement.isTypeOnly) continue;
        if (ts.isExternalModuleReference(reference)) {
          statements.push(constant(statement.name.text, callRequire(reference.expression)));
        } else {
          statements.push(statement);
        }
      } else if (ts.isExportDeclaration(statement)) {
        // export {a, b} / export * from 'm': nothing to run
      } else if (ts.isExportAssignment(statement)) {
        statements.push(f.createExpressionStatement(statement.expression));
      } else {
        statements.push(withoutExport(statement));
      }
    }
    return f.updateSourceFile(sourceFile, statements);
  };
}

let typeScriptOptions = null;
let typeScriptTransformers = null;

function setUpTypeScript() {
  ts = loadTypeScript();
  typeScriptOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    isolatedModules: true,
    useDefineForClassFields: true,
    noImplicitUseStrict: true,
    alwaysStrict: false,
    experimentalDecorators: true,
  };
  typeScriptTransformers = { before: [replTransformer()] };
  Object.defineProperty(globalThis, '__tsImportDefault', { value: importDefault, writable: true, configurable: true });
}

function typeScriptSyntaxError(diagnostic, filename) {
  const message = `${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')} (TS${diagnostic.code})`;
  const error = new SyntaxError(message);
  let where = filename;
  if (diagnostic.file && diagnostic.start !== undefined) {
    const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
    const source = diagnostic.file.text.split(/\r\n|[\n\r\u2028\u2029]/)[line] || '';
    where = `${filename}:${line + 1}\n${source}\n${' '.repeat(character)}^\n`;
  }
  error.stack = `${where}\nSyntaxError: ${message}`;
  return error;
}

function transpileTypeScript(code, filename) {
  const output = ts.transpileModule(code, {
    compilerOptions: { ...typeScriptOptions, sourceMap: true },
    fileName: `${filename}.ts`,
    reportDiagnostics: true,
    transformers: typeScriptTransformers,
  });
  const errors = (output.diagnostics || []).filter((d) => d.category === ts.DiagnosticCategory.Error && d.file);
  if (errors.length) throw typeScriptSyntaxError(errors[0], filename);
  if (output.sourceMapText) {
    try {
      sourceMaps.set(filename, new SourceMap(JSON.parse(output.sourceMapText)));
    } catch {
      // positions stay those of the JavaScript
    }
  }
  // A cell that had imports is a module; TypeScript then marks its output as one.
  return output.outputText.replace(/^export \{\};\s*$/m, '').replace(/^\/\/# sourceMappingURL=.*$/m, '');
}

// Stack positions (cell-N:line:column, 1-based) in the JavaScript that ran ->
// positions in the TypeScript cell. The REPL rewrites keep lines, not always columns.
const sourceMaps = new Map();

function mapPosition(filename, line, column) {
  const map = sourceMaps.get(filename);
  if (!map) return null;
  const entry = map.findEntry(line - 1, Math.max(column - 1, 0));
  if (!entry || entry.originalLine === undefined) return null;
  return { line: entry.originalLine + 1, column: entry.originalColumn + 1 };
}

function mapStack(stack) {
  if (!sourceMaps.size) return stack;
  return stack
    .replace(/\b(cell-\d+):(\d+):(\d+)\b/g, (whole, file, line, column) => {
      const p = mapPosition(file, Number(line), Number(column));
      return p ? `${file}:${p.line}:${p.column}` : whole;
    })
    .replace(/^(cell-\d+):(\d+)(\n.*\n( *)\^)/m, (whole, file, line, rest, indent) => { // V8's header
      const p = mapPosition(file, Number(line), indent.length + 1);
      return p ? `${file}:${p.line}${rest}` : whole;
    });
}

// ---- cells --------------------------------------------------------------------

let executionCount = 0;
let onInterrupt = null; // set while a cell awaits a promise

function interruptedError() {
  const error = new Error('Script execution was interrupted by `SIGINT`');
  error.code = INTERRUPTED;
  return error;
}

function isThenable(value) {
  return value !== null && (typeof value === 'object' || typeof value === 'function') &&
    typeof value.then === 'function';
}

// breakOnSigint only covers synchronous code; a SIGINT while the cell awaits
// ends the wait instead (the awaited work itself cannot be cancelled).
function awaitInterruptibly(thenable) {
  return new NativePromise((resolve, reject) => {
    onInterrupt = () => reject(interruptedError());
    NativePromise.resolve(thenable).then(resolve, reject);
  }).finally(() => {
    onInterrupt = null;
  });
}

function resultEvent(value) {
  let text = util.inspect(value, { showProxy: true, maxStringLength: Infinity });
  // E2B strips the quotes of a string's representation: 'hi' -> hi.
  if (text.length >= 2 && `'"\``.includes(text[0]) && text[text.length - 1] === text[0]) text = text.slice(1, -1);
  return { type: 'result', text, extra: {}, is_main_result: true };
}

// The stack without the runner's frames: the vm frame and everything below it
// is the runner calling the cell.
function cleanStack(stack) {
  const lines = stack.split('\n');
  const isFrame = (line) => /^\s+at /.test(line);
  const vmFrame = lines.findIndex((line) => isFrame(line) && line.includes('node:vm:'));
  return (vmFrame < 0 ? lines : lines.slice(0, vmFrame))
    .filter((line) => !(isFrame(line) && line.includes(__filename)))
    .join('\n');
}

// name, value and traceback of a thrown value (anything can be thrown).
function describe(thrown) {
  const isObject = thrown !== null && (typeof thrown === 'object' || typeof thrown === 'function');
  try {
    if (isObject && typeof thrown.stack === 'string') {
      return {
        name: typeof thrown.name === 'string' ? thrown.name : 'Error',
        value: String(thrown.message ?? ''),
        traceback: mapStack(cleanStack(thrown.stack)),
      };
    }
    const value = util.inspect(thrown);
    return { name: 'Error', value, traceback: `Uncaught ${value}` };
  } catch {
    return { name: 'Error', value: '<the thrown value could not be formatted>', traceback: '' };
  }
}

function reportUncaught(thrown, prefix) {
  const { traceback } = describe(thrown);
  writeOutput('stderr', `${traceback.startsWith('Uncaught ') ? '' : prefix}${traceback}\n`);
}

function errorEvent(thrown) {
  const { name, value, traceback } = describe(thrown);
  return {
    type: 'error', name, value: value.slice(0, MAX_ERROR_TEXT), traceback: traceback.slice(-MAX_ERROR_TEXT),
  };
}

function applyEnv(env) {
  const saved = {};
  for (const [key, value] of Object.entries(env)) {
    saved[key] = process.env[key];
    process.env[key] = value;
  }
  return saved;
}

function restoreEnv(saved) {
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
}

async function runCell(id, code, env, stdin) {
  if (stdin !== undefined && stdin !== null) {
    try {
      cellStdin = openCellStdin(stdin);
    } catch (e) {
      return protocolError(`cannot open stdin ${stringify(stdin)}: ${e.message}`, id);
    }
  }
  executionCount += 1;
  const savedEnv = applyEnv(env);
  let failed = false;
  let thrown;
  try {
    const filename = `cell-${executionCount}`;
    const script = compileCell(ts ? transpileTypeScript(code, filename) : code, filename);
    let value = script.runInThisContext({ breakOnSigint: true });
    if (isThenable(value)) value = await awaitInterruptibly(value);
    if (value !== undefined) send(resultEvent(value));
  } catch (e) {
    failed = true;
    thrown = e;
  }
  restoreEnv(savedEnv);
  closeCellStdin();
  let status = 'ok';
  if (failed) {
    status = thrown !== null && typeof thrown === 'object' && thrown.code === INTERRUPTED ? 'interrupted' : 'error';
    send(errorEvent(thrown));
  }
  send({ type: 'end', id, status, execution_count: executionCount });
}

// ---- requests (fd 3) ------------------------------------------------------------

function protocolError(message, id) {
  send({ type: 'error', name: 'ProtocolError', value: message, traceback: '' });
  send({ type: 'end', id, status: 'error', execution_count: executionCount });
}

function validateExec(request) {
  if (typeof request.id !== 'string') return 'exec needs a string id';
  if (typeof request.code !== 'string') return 'exec needs a string code';
  const { stdin } = request;
  if (stdin !== undefined && stdin !== null &&
      (typeof stdin !== 'string' || !stdin.startsWith('/') || stdin.includes('\0'))) {
    return 'stdin must be an absolute path without NUL';
  }
  const { env } = request;
  if (env === undefined || env === null) return null;
  if (typeof env !== 'object' || Array.isArray(env)) return 'env must be an object';
  for (const [key, value] of Object.entries(env)) {
    if (typeof value !== 'string') return `env value of ${stringify(key)} is not a string`;
    if (!key || key.includes('=') || key.includes('\0') || value.includes('\0')) {
      return `invalid environment variable ${stringify(key)}`;
    }
  }
  return null;
}

function shutdown() {
  flushOutput();
  process.exit(0);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

async function handle(item) {
  if (item.eof) shutdown();
  if (item.tooLarge) return protocolError('request frame larger than 64 MiB', '');
  let request;
  try {
    request = JSON.parse(utf8.decode(item.payload));
  } catch (e) {
    return protocolError(`request is not valid JSON: ${e.message}`, '');
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    return protocolError('request is not a JSON object', '');
  }
  if (request.op === 'shutdown') shutdown();
  const id = typeof request.id === 'string' ? request.id : '';
  if (request.op !== 'exec') return protocolError(`unknown op ${stringify(request.op)}`, id);
  const problem = validateExec(request);
  if (problem) return protocolError(problem, id);
  return runCell(request.id, request.code, request.env || {}, request.stdin);
}

// Requests are handled one at a time, in order; a cell may be asynchronous.
const queue = [];
let draining = false;

async function drain() {
  draining = true;
  while (queue.length) await handle(queue.shift());
  draining = false;
}

function enqueue(item) {
  queue.push(item);
  if (!draining) drain();
}

function readRequests() {
  const chunks = [];
  let buffered = 0;
  let size = -1; // of the frame being read; -1 while reading its header
  let skipping = 0; // bytes left of an oversized frame
  const take = (n) => {
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
    chunks.length = 0;
    if (all.length > n) chunks.push(all.subarray(n));
    buffered -= n;
    return all.subarray(0, n);
  };
  const socket = new net.Socket({ fd: REQUEST_FD, readable: true, writable: false });
  socket.on('data', (chunk) => {
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (skipping) {
        const n = Math.min(skipping, buffered);
        take(n);
        skipping -= n;
        if (skipping) return;
        enqueue({ tooLarge: true });
      }
      if (size < 0) {
        if (buffered < 4) return;
        size = take(4).readUInt32BE(0);
        if (size > MAX_FRAME) {
          skipping = size;
          size = -1;
          continue;
        }
      }
      if (buffered < size) return;
      enqueue({ payload: take(size) });
      size = -1;
    }
  });
  socket.on('end', () => enqueue({ eof: true }));
  socket.on('error', () => enqueue({ eof: true }));
}

// ---- start ------------------------------------------------------------------------

function main() {
  process.on('SIGINT', () => {
    if (onInterrupt) onInterrupt(); // between cells: ignored
  });
  // Errors of work a cell left behind (timers, promises) are reported, not fatal.
  process.on('uncaughtException', (error) => reportUncaught(error, 'Uncaught '));
  process.on('unhandledRejection', (reason) => reportUncaught(reason, 'Uncaught (in promise) '));
  process.on('exit', flushOutput); // user code calling process.exit()
  // The loader that makes `await import()` work in cells warns once that it is
  // experimental; that is the runner's business, not the user's.
  const emitWarning = process.emitWarning;
  process.emitWarning = function filteredEmitWarning(warning, ...rest) {
    if (String(warning).includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return undefined;
    return emitWarning.call(this, warning, ...rest);
  };
  // The working directory is the context's: the sandbox starts the runner in it.
  globalThis.require = createRequire(path.join(process.cwd(), '[cell]'));
  Object.defineProperty(globalThis, '__codeexecImport', { value: importForCells, writable: true, configurable: true });
  patchChildProcess();
  if (!process.argv.includes('--typescript')) {
    readRequests();
    send({ type: 'ready', language: 'javascript', version: process.versions.node, pid: process.pid });
    return;
  }
  // Loading TypeScript (~10 MB of JavaScript) and its first transpilation take
  // a few hundred ms: done after `ready`, before any request is read (requests
  // wait in the channel), so the host sees the kernel up sooner.
  let version;
  try {
    ({ version } = require(`${TYPESCRIPT_PATHS[0]}/package.json`));
  } catch {
    setUpTypeScript(); // elsewhere, or missing: then the error ends the runner here
    ({ version } = ts);
  }
  send({ type: 'ready', language: 'typescript', version, pid: process.pid });
  if (!ts) setUpTypeScript();
  ts.transpileModule('let warm: number = 1', { compilerOptions: typeScriptOptions });
  readRequests();
}

main();
