-- wrk script for the soak (bench/soak.sh): POST /v1/heartbeat
-- {"session":"s1"} for many users, one request in 50 a POST /v1/login
-- instead. Each connection waits 10 ms between requests, and each thread
-- sends at most RATE / THREADS requests in any wall-clock second, so that
-- enough connections (bench/soak.sh opens about RATE / 50) hold RATE
-- without overshooting it. Usage:
--   wrk -t THREADS -c N ... -s soak.lua URL -- TOKENS_FILE RATE THREADS
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
end

local beats, logins = {}, {}
local counter, sent = 0, 0
local budget, second, used = 0, 0, 0  -- requests per second, this thread

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
   local rate, threads = tonumber(args[2] or 0), tonumber(args[3] or 1)
   budget = rate > 0 and math.ceil(rate / threads) or 0
end

function delay()
   if budget > 0 then
      local now = os.time()
      if now ~= second then
         second, used = now, 0
      end
      used = used + 1
      if used > budget then
         return 10 + math.random(0, 10)  -- this second's share is spent
      end
   end
   return 10  -- ms between a connection's requests
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
