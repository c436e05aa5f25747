// The playground: runs code through the service's own REST API and WebSocket, as any
// client would. No framework and no CDN: this file, the page and its stylesheet are
// compiled into the binary.
(function () {
  'use strict';

  var $ = function (id) { return document.getElementById(id); };
  var samples = {
    python: $('code').value,
    javascript: 'for (let i = 0; i < 3; i++) {\n  console.log("step", i);\n  await new Promise((r) => setTimeout(r, 300));\n}\n[1, 2, 3].map((n) => n * n)',
    typescript: 'const greet = (name: string): string => `hello, ${name}`;\nconsole.log(greet("typescript"));',
    bash: 'for i in 1 2 3; do\n  echo "step $i"\n  sleep 0.3\ndone\nuname -srm',
    java: 'System.out.println("hello from jshell");\n6 * 7',
    r: 'x <- c(1, 4, 9)\nprint(summary(x))',
  };
  var state = {
    clientId: newClientId(),
    ws: null,
    wsOpening: null,
    current: null,      // {id, mode} of the execution shown
    buffered: {},       // events that arrived before their POST answered, by executionId
    sandboxId: null,
  };

  function newClientId() {
    var bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return 'playground-' + Array.prototype.map.call(bytes, function (b) {
      return ('0' + b.toString(16)).slice(-2);
    }).join('');
  }

  function apiKey() { return $('api-key').value.trim(); }

  function ApiError(status, code, message) {
    this.status = status; this.code = code; this.message = message;
  }

  function api(method, path, body) {
    var headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (apiKey()) headers.authorization = 'Bearer ' + apiKey();
    return fetch(path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (res) {
        return res.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
          if (!res.ok) {
            var err = data && data.error ? data.error : { code: 'http_' + res.status, message: text };
            throw new ApiError(res.status, err.code, err.message);
          }
          return data;
        });
      });
  }

  // ---- the WebSocket of this page's clientId ----

  function socket() {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) return Promise.resolve(state.ws);
    if (state.wsOpening) return state.wsOpening;
    var url = new URL('/', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('clientId', state.clientId);
    if (apiKey()) url.searchParams.set('token', apiKey());
    state.wsOpening = new Promise(function (resolve, reject) {
      var ws = new WebSocket(url.toString());
      var opened = false;
      ws.onopen = function () { opened = true; state.ws = ws; state.wsOpening = null; resolve(ws); };
      ws.onmessage = function (m) {
        var ev;
        try { ev = JSON.parse(m.data); } catch (e) { return; }
        onEvent(ev);
      };
      ws.onclose = function (e) {
        if (state.ws === ws) state.ws = null;
        state.wsOpening = null;
        if (!opened) {
          reject(new ApiError(0, 'websocket', e.code === 1006 && !apiKey()
            ? 'The WebSocket was refused: does the service need an API key?'
            : 'The WebSocket closed (' + e.code + ')'));
        } else if (state.current && state.current.ws === ws) {
          finish('killed', 'The WebSocket closed (' + e.code + (e.reason ? ': ' + e.reason : '') + ')');
        }
      };
    });
    return state.wsOpening;
  }

  function onEvent(ev) {
    if (ev.type === 'status' && ev.executionId === null) {
      setVerdict('failed', 'the service is shutting down');
      return;
    }
    if (!state.current || !state.current.id) {
      (state.buffered[ev.executionId] = state.buffered[ev.executionId] || []).push(ev);
      return;
    }
    if (ev.executionId !== state.current.id) return;
    switch (ev.type) {
      case 'status':
        if (ev.status === 'running') setVerdict('running', '');
        else finish(state.current.gotResult ? null : ev.status, ev.message);
        break;
      case 'stdout':
      case 'stderr':
        appendOutput(ev.type, ev.data);
        break;
      case 'error':
        showError(ev.error);
        break;
      case 'display':
        // A rich result shown mid-cell (a figure, display()): rendered at once.
        renderResult(ev.result);
        break;
      case 'result':
        state.current.gotResult = true;
        // The final result holds every rich result again: it replaces the live ones.
        $('results').textContent = '';
        showResult(ev.result);
        break;
    }
  }

  // ---- running ----

  function run() {
    if (state.current) return;
    resetOutput();
    var mode = document.querySelector('input[name=mode]:checked').value;
    var language = $('language').value;
    var seconds = Math.max(1, Math.min(3600, parseInt($('timeout').value, 10) || 30));
    var body = { code: $('code').value, language: language, timeout: seconds * 1000, clientId: state.clientId };
    state.current = { id: null, mode: mode, ws: null };
    setBusy(true);
    setVerdict('running', mode === 'sandbox' ? 'in sandbox' : 'one-shot');
    socket()
      .then(function (ws) {
        state.current.ws = ws;
        if (mode !== 'sandbox') return '/execute-stream';
        return ensureSandbox(language).then(function (id) { return '/sandboxes/' + id + '/execute-stream'; });
      })
      .then(function (path) { return api('POST', path, body); })
      .then(function (started) {
        if (!state.current) return;
        state.current.id = started.executionId;
        var early = state.buffered[started.executionId] || [];
        state.buffered = {};
        early.forEach(onEvent);
      })
      .catch(function (err) {
        if (err.code === 'sandbox_not_found') forgetSandbox();
        failRun(err);
      });
  }

  function ensureSandbox(language) {
    if (state.sandboxId) return Promise.resolve(state.sandboxId);
    $('sandbox-id').textContent = 'starting…';
    return api('POST', '/sandboxes', { language: language, timeout: 900 }).then(function (sbx) {
      state.sandboxId = sbx.sandboxId;
      $('sandbox-id').textContent = sbx.sandboxId;
      $('sandbox-kill').disabled = false;
      return sbx.sandboxId;
    });
  }

  function forgetSandbox() {
    state.sandboxId = null;
    $('sandbox-id').textContent = 'none yet: the next run creates it';
    $('sandbox-kill').disabled = true;
  }

  function stop() {
    var cur = state.current;
    if (!cur) return;
    $('stop').disabled = true;
    if (cur.mode === 'sandbox' && state.sandboxId) {
      // An interrupt (KeyboardInterrupt in Python) ends the cell; the sandbox keeps its state.
      api('POST', '/sandboxes/' + state.sandboxId + '/interrupt', {}).catch(failRun);
      return;
    }
    // A one-shot execution ends when the last WebSocket of its clientId leaves.
    var ws = state.ws;
    state.clientId = newClientId();
    if (ws) ws.close(1000, 'stopped');
    else finish('killed', 'stopped');
  }

  function finish(verdict, note) {
    if (!state.current) return;
    state.current = null;
    setBusy(false);
    // Runs finished so far: lets a test (or a screen reader user) tell one run from the next.
    document.body.dataset.runs = String((parseInt(document.body.dataset.runs, 10) || 0) + 1);
    if (verdict) setVerdict(verdict, note || '');
  }

  function failRun(err) {
    var message = err instanceof ApiError ? (err.code ? err.code + ': ' : '') + err.message : String(err);
    if (err.status === 401) {
      message = 'This service needs an API key: enter it above. (' + message + ')';
      $('api-key').focus();
    }
    showError({ name: 'Request failed', value: message, traceback: '' });
    finish('failed', '');
  }

  // ---- rendering ----

  function resetOutput() {
    $('output').textContent = '';
    $('results').textContent = '';
    $('error').hidden = true;
    $('usage').textContent = '';
  }

  function setBusy(busy) {
    document.body.dataset.state = busy ? 'running' : 'idle';
    $('run').disabled = busy;
    $('stop').disabled = !busy;
  }

  function setVerdict(verdict, note) {
    var el = $('verdict');
    el.className = 'verdict ' + verdict;
    el.textContent = verdict.replace('_', ' ');
    el.dataset.verdict = verdict;
    if (note !== undefined) $('usage').textContent = note;
  }

  function appendOutput(stream, text) {
    var out = $('output');
    var stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    var last = out.lastElementChild;
    if (last && last.className === stream) {
      last.textContent += text;
    } else {
      var span = document.createElement('span');
      span.className = stream;
      span.textContent = text;
      out.appendChild(span);
    }
    if (stick) out.scrollTop = out.scrollHeight;
  }

  function showError(error) {
    $('error-title').textContent = error.name + (error.value ? ': ' + error.value : '');
    $('error-traceback').textContent = error.traceback || '';
    $('error-traceback').hidden = !error.traceback;
    $('error').hidden = false;
  }

  function mib(bytes) { return (bytes / 1048576).toFixed(1) + ' MiB'; }

  function showResult(result) {
    setVerdict(result.status);
    var u = result.usage || {};
    $('usage').textContent = 'wall ' + u.wallMs + ' ms · CPU ' + u.cpuMs + ' ms · peak memory ' + mib(u.peakMemoryBytes || 0);
    if (result.truncated && (result.truncated.stdout || result.truncated.stderr))
      $('usage').textContent += ' · output truncated';
    if (result.error) showError(result.error);
    (result.results || []).forEach(renderResult);
  }

  function renderResult(r) {
    var box = document.createElement('div');
    box.className = 'result';
    var label = document.createElement('div');
    label.className = 'label';
    var body;
    if (r.png || r.jpeg || r.svg) {
      body = document.createElement('img');
      body.src = r.png ? 'data:image/png;base64,' + r.png
        : r.jpeg ? 'data:image/jpeg;base64,' + r.jpeg
        : 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(r.svg);
      body.alt = r.text || 'image result';
      label.textContent = r.png ? 'image/png' : r.jpeg ? 'image/jpeg' : 'image/svg+xml';
    } else if (r.html) {
      // The code's HTML runs in an iframe without scripts or this page's origin.
      body = document.createElement('iframe');
      body.setAttribute('sandbox', '');
      body.setAttribute('title', 'HTML result');
      body.srcdoc = '<style>body{font:14px system-ui,sans-serif;margin:6px}table{border-collapse:collapse}' +
        'th,td{border:1px solid #ccd;padding:3px 8px;text-align:right}th{background:#f0f2f6}</style>' + r.html;
      label.textContent = 'text/html';
    } else {
      body = document.createElement('pre');
      var text = r.text !== undefined ? r.text : r.markdown !== undefined ? r.markdown
        : r.json !== undefined ? JSON.stringify(r.json, null, 2) : JSON.stringify(r);
      body.textContent = text;
      label.textContent = r.is_main_result ? 'result' : 'output';
    }
    box.appendChild(label);
    box.appendChild(body);
    if (r.data && r.html) {
      var data = document.createElement('details');
      var summary = document.createElement('summary');
      summary.textContent = 'data';
      var pre = document.createElement('pre');
      pre.textContent = JSON.stringify(r.data, null, 2);
      data.appendChild(summary);
      data.appendChild(pre);
      box.appendChild(data);
    }
    $('results').appendChild(box);
  }

  // ---- the status strip (GET /health and /metrics) ----

  function refreshStatus() {
    Promise.all([
      fetch('/health').then(function (r) { return r.json(); }),
      fetch('/metrics').then(function (r) { return r.ok ? r.text() : ''; }).catch(function () { return ''; }),
    ]).then(function (answers) {
      var h = answers[0];
      $('status-dot').className = 'dot ' + (h.status === 'ok' ? 'up' : 'down');
      $('status-text').textContent = h.status === 'ok' ? h.backend + ' backend' : h.status;
      $('st-sandboxes').textContent = h.sandboxes.live;
      $('st-executions').textContent = h.executions.running;
      $('st-clients').textContent = h.clients.connected;
      var actors = 0;
      answers[1].split('\n').forEach(function (line) {
        if (line.indexOf('codeexec_actors_live{') === 0) actors += parseFloat(line.split(' ').pop()) || 0;
      });
      $('st-actors').textContent = answers[1] ? actors : '–';
      updateLanguages(h.languages || []);
    }).catch(function () {
      $('status-dot').className = 'dot down';
      $('status-text').textContent = 'unreachable';
    });
  }

  var languagesKnown = false;
  function updateLanguages(languages) {
    if (languagesKnown) return;
    languagesKnown = true;
    var select = $('language');
    languages.forEach(function (l) {
      var option = select.querySelector('option[value="' + l.language + '"]');
      if (!option && l.available) {
        option = document.createElement('option');
        option.value = l.language;
        option.textContent = l.language === 'r' ? 'R' : l.language.charAt(0).toUpperCase() + l.language.slice(1);
        select.appendChild(option);
      }
      if (option && !l.available) {
        option.disabled = true;
        option.title = l.reason || 'not available on this host';
      }
    });
  }

  // ---- wiring ----

  $('run-form').addEventListener('submit', function (e) { e.preventDefault(); run(); });
  $('stop').addEventListener('click', stop);
  $('sandbox-kill').addEventListener('click', function () {
    if (!state.sandboxId) return;
    var id = state.sandboxId;
    forgetSandbox();
    api('DELETE', '/sandboxes/' + id).catch(function () {});
  });
  document.querySelectorAll('input[name=mode]').forEach(function (radio) {
    radio.addEventListener('change', function () {
      $('sandbox-bar').hidden = document.querySelector('input[name=mode]:checked').value !== 'sandbox';
    });
  });
  $('language').addEventListener('change', function () {
    var code = $('code').value;
    var isSample = Object.keys(samples).some(function (k) { return samples[k] === code; });
    if (isSample || !code.trim()) $('code').value = samples[$('language').value] || '';
  });
  var escaped = false;
  $('code').addEventListener('keydown', function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
      e.preventDefault();
      run();
    } else if (e.key === 'Escape') {
      escaped = true;
    } else if (e.key === 'Tab' && !escaped && !e.shiftKey) {
      e.preventDefault();
      var t = e.target, start = t.selectionStart;
      t.setRangeText('    ', start, t.selectionEnd, 'end');
    } else {
      escaped = false;
    }
  });
  try {
    var saved = sessionStorage.getItem('codeexec-api-key');
    if (saved) $('api-key').value = saved;
  } catch (e) { /* storage off */ }
  $('api-key').addEventListener('change', function () {
    try { sessionStorage.setItem('codeexec-api-key', apiKey()); } catch (e) { /* storage off */ }
    if (state.ws) state.ws.close(1000, 'new key');
  });
  setBusy(false);
  refreshStatus();
  setInterval(refreshStatus, 2000);
})();
