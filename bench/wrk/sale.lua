-- wrk script: every request posts a new, unique 3-line sale for one of the terminals in
-- the token file (TOKENS, lines "TERMINAL_ID TOKEN" as `machub token create` prints them).
--   TOKENS=tokens.txt wrk -t2 -c64 -d10s -s bench/wrk/sale.lua http://127.0.0.1:PORT
-- Terminals are taken in turn, so every terminal posts; ids are unique per thread and run,
-- and written in letters: an id with a long run of digits can pass the Luhn check and be
-- refused as a card number (card_number_forbidden), as the hub must.
-- Answers other than 201 (non_201) and socket errors are counted and printed at the end.

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_no", thread_count)
  table.insert(threads, thread)
end

-- "409" -> "ead": digits as letters.
function letters(text)
  return (string.gsub(text, "%d", function(d) return string.char(97 + tonumber(d)) end))
end

function init(args)
  terminals, tokens = {}, {}
  local path = os.getenv("TOKENS") or "tokens.txt"
  for line in io.lines(path) do
    local id, token = line:match("^(%S+)%s+(%S+)$")
    if id then
      table.insert(terminals, id)
      table.insert(tokens, token)
    end
  end
  assert(#terminals > 0, "no terminals in " .. path)
  run_id = letters(os.getenv("RUN_ID") or tostring(os.time()))
  counter = 0
  non_201 = 0
  wrk.method = "POST"
end

function request()
  counter = counter + 1
  local t = (counter + thread_no) % #terminals + 1
  local body = string.format(
    '{"id":"wrk-%s-%s-%s","terminal_id":"%s","created_at":"2026-12-06T10:15:00Z",' ..
    '"currency":"USD","cashier":"c-1","lines":[' ..
    '{"sku":"0001","name":"Coffee","qty":"2","unit_price":"3.50","tax_rate":"0.0825"},' ..
    '{"sku":"0042","name":"Bagel","qty":"1","unit_price":"2.25","discount":"0.25","tax_rate":"0.0825"},' ..
    '{"sku":"0107","name":"Apples","qty":"0.734","unit_price":"2.99","tax_rate":"0"}],' ..
    '"payments":[{"method":"cash","amount":"20.00"}]}',
    run_id, letters(tostring(thread_no)), letters(tostring(counter)), terminals[t])
  return wrk.format(nil, "/v1/sales",
    {["Authorization"] = "Bearer " .. tokens[t], ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status ~= 201 then non_201 = non_201 + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + (thread:get("non_201") or 0) end
  io.write(string.format(
    '{"requests":%d,"duration_s":%.3f,"rate_per_s":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,' ..
    '"p99_ms":%.3f,"max_ms":%.3f,"non_201":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
