-- wrk script for the HTTP heartbeat benchmark (bench/run.sh http).
-- Sends POST /v1/heartbeat {"session":"s1"} for many distinct users, each
-- with its own bearer JWT, cycling through the users. The same script runs
-- against presence-gateway and against nginx `return 204`, so both see the
-- same requests. Usage: wrk ... -s heartbeat.lua URL -- TOKENS_FILE
-- (TOKENS_FILE: "user token" per line, from `presence-bench tokens`).
local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local requests = {}
local counter = 0

function init(args)
   local path = args[1]
   if not path then
      error("heartbeat.lua: pass the tokens file after --")
   end
   local body = '{"session":"s1"}'
   for line in io.lines(path) do
      local user, tok = line:match("^(%S+)%s+(%S+)$")
      if user then
         -- Pre-build each request once: per-request Lua work would cost
         -- wrk CPU on a box where the server shares the cores.
         requests[#requests + 1] = wrk.format("POST", "/v1/heartbeat", {
            ["Authorization"] = "Bearer " .. tok,
            ["Content-Type"] = "application/json",
         }, body)
      end
   end
   if #requests == 0 then
      error("heartbeat.lua: no tokens in " .. path)
   end
   -- Threads start at different users.
   counter = (id * 7919) % #requests
end

function request()
   counter = counter % #requests + 1
   return requests[counter]
end

function done(summary, latency, requests_)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.status + e.timeout
   io.write(string.format(
      "WRK requests=%d duration_s=%.3f req_s=%.0f p50_us=%d p99_us=%d " ..
      "p999_us=%d max_us=%d errors=%d status_errors=%d timeouts=%d\n",
      summary.requests, summary.duration / 1e6,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99),
      latency:percentile(99.9), latency.max, errors, e.status, e.timeout))
end
