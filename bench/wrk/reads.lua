-- GETs rotating over the paths given after the token:
--   wrk ... -s reads.lua URL -- TOKEN PATH [PATH ...]
local paths, headers, count = {}, {}, 0

function init(args)
  headers["Authorization"] = "Bearer " .. args[1]
  for i = 2, #args do
    paths[#paths + 1] = args[i]
  end
end

function request()
  count = count + 1
  return wrk.format("GET", paths[(count % #paths) + 1], headers)
end
