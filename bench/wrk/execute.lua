-- wrk script for scenario 3: POST /execute print('hi') (a one-shot Python execution).
-- A response counts as good only with HTTP 200 and the verdict "status":"ok" in its
-- body; done() prints one line "WRK_JSON {...}" that bench/scenarios/throughput.py reads.
--   wrk -t2 -c16 -d10s --timeout 30s -s bench/wrk/execute.lua http://127.0.0.1:PORT/execute

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"code": "print(\'hi\')", "language": "python"}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  good, bad, first_bad = 0, 0, ""
end

function response(status, headers, body)
  if status == 200 and body:find('"status":"ok"', 1, true) then
    good = good + 1
  else
    bad = bad + 1
    if first_bad == "" then
      first_bad = status .. " " .. body:sub(1, 200)
    end
  end
end

function done(summary, latency, requests)
  local good_total, bad_total, example = 0, 0, ""
  for _, thread in ipairs(threads) do
    good_total = good_total + thread:get("good")
    bad_total = bad_total + thread:get("bad")
    if example == "" then example = thread:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "good": %d, "bad": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "first_bad": "%s"}\n',
    summary.requests, summary.duration, good_total, bad_total,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), (example:gsub('[%c"\\]', ' '))))
end
