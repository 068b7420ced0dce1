-- wrk script for tests/bench/auth-get: GET /users/<random telegram_id> with the internal token.
--   BENCH_TOKEN   the daemon's INTERNAL_TOKEN (read from the environment so that it never shows
--                 on a command line)
--   BENCH_MAX_ID  ids are drawn uniformly from 1..BENCH_MAX_ID (default 10000)

local token = os.getenv("BENCH_TOKEN")
if token == nil or token == "" then
    error("random_user.lua: set BENCH_TOKEN to the daemon's INTERNAL_TOKEN")
end
local max_id = tonumber(os.getenv("BENCH_MAX_ID") or "10000")
local headers = { ["Authorization"] = "Bearer " .. token }

-- Each wrk thread has its own Lua state: number them here so that their random sequences differ.
local next_thread = 0
function setup(thread)
    next_thread = next_thread + 1
    thread:set("thread_no", next_thread)
end

function init(args)
    math.randomseed(os.time() * 1000 + (thread_no or 0))
end

function request()
    return wrk.format("GET", "/users/" .. math.random(1, max_id), headers)
end
