-- wrk script for the benchmarks: every request is a random line of the targets file named after
-- "--" (lines are "path<TAB>token"); requests are formatted once per thread, so picking one is
-- cheap. done() prints the figures as one JSON line that bench/support.py parses.

local requests = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("seed", thread_count)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    local path, token = line:match("^([^\t]+)\t(.+)$")
    if path then
      requests[#requests + 1] = wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
    end
  end
  file:close()
  math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
  return requests[math.random(#requests)]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests":%d,"duration_us":%.0f,"p50_us":%.0f,"p99_us":%.0f,'
    .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
