-- wrk script for the soak (bench/soak.sh): POST /v1/heartbeat
-- {"session":"s1"} for many users, one request in 50 a POST /v1/login
-- instead, each connection paced to about 100 requests a second
-- (wrk -c N then gives about 100 x N req/s). Usage:
--   wrk -c N ... -s soak.lua URL -- TOKENS_FILE
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
end

local beats, logins = {}, {}
local counter, sent = 0, 0

function init(args)
   local path = args[1]
   if not path then
      error("soak.lua: pass the tokens file after --")
   end
   for line in io.lines(path) do
      local user, tok = line:match("^(%S+)%s+(%S+)$")
      if user then
         local h = {
            ["Authorization"] = "Bearer " .. tok,
            ["Content-Type"] = "application/json",
         }
         beats[#beats + 1] = wrk.format("POST", "/v1/heartbeat", h,
                                        '{"session":"s1"}')
         logins[#logins + 1] = wrk.format("POST", "/v1/login", h,
                                          '{"device":"soak"}')
      end
   end
   if #beats == 0 then
      error("soak.lua: no tokens in " .. path)
   end
   counter = (id * 7919) % #beats
end

function delay()
   return 10  -- ms between a connection's requests: ~100 req/s each
end

function request()
   counter = counter % #beats + 1
   sent = sent + 1
   if sent % 50 == 0 then
      return logins[counter]
   end
   return beats[counter]
end

function done(summary, latency, requests_)
   local e = summary.errors
   io.write(string.format(
      "WRK requests=%d duration_s=%.3f req_s=%.0f p50_us=%d p99_us=%d " ..
      "errors=%d status_errors=%d timeouts=%d\n",
      summary.requests, summary.duration / 1e6,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99),
      e.connect + e.read + e.write + e.status + e.timeout, e.status,
      e.timeout))
end
