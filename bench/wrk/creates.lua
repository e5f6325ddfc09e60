-- POST /api/v1/customers, each body a customer of its own (unique name and email):
--   wrk ... -s creates.lua URL -- TOKEN RUN_ID
local headers, count, prefix = {}, 0, ""
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  headers["Authorization"] = "Bearer " .. args[1]
  headers["Content-Type"] = "application/json"
  prefix = args[2] .. "-" .. thread_number
end

function request()
  count = count + 1
  local body = string.format(
    '{"name": "Bench %s %d", "email": "bench.%s.%d@example.com", "owner": "owner-%d"}',
    prefix, count, prefix, count, count % 20
  )
  return wrk.format("POST", "/api/v1/customers", headers, body)
end

-- Answers by status, printed at the end ("status 503: 12") so that failures say what they were.
-- A global: done() reads each thread's own with thread:get.
statuses = {}

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("status %d: %d\n", status, n))
  end
end
