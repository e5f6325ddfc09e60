-- POST /api/v1/customers, each body a customer of its own (unique name and email):
--   wrk ... -s creates.lua URL -- TOKEN RUN_ID
local headers, count, prefix = {}, 0, ""
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
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
