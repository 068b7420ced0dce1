-- wrk script for tests/bench/run: one of the BFF's views, each request signed for a random person of
-- a pool of pre-signed Telegram init data.
--   BENCH_POOL  a Lua file returning { {telegram_id, "tma <initData>", "<their group's uuid>"}, ... }
--               (written by tests/bench/run with tma-sign)
--   BENCH_VIEW  profile (GET /api/user/profile/{own id}), group (GET /api/groups/{own group}) or
--               schedule (GET /api/schedule/{own id}, the next 7 days)
-- Everybody reads their own view: the access rule then needs no extra call, as for most app users.

local pool_file = os.getenv("BENCH_POOL")
if pool_file == nil or pool_file == "" then
    error("bff_view.lua: set BENCH_POOL to the pool of signed init data")
end
local view = os.getenv("BENCH_VIEW") or "profile"
if view ~= "profile" and view ~= "group" and view ~= "schedule" then
    error("bff_view.lua: BENCH_VIEW must be profile, group or schedule")
end

local pool = dofile(pool_file)
local requests = {}

-- Each wrk thread has its own Lua state: number them here so that their random sequences differ.
local next_thread = 0
function setup(thread)
    next_thread = next_thread + 1
    thread:set("thread_no", next_thread)
end

-- The requests are formatted once: request() only picks one.
function init(args)
    math.randomseed(os.time() * 1000 + (thread_no or 0))
    for i, p in ipairs(pool) do
        local path
        if view == "profile" then
            path = "/api/user/profile/" .. p[1]
        elseif view == "group" then
            path = "/api/groups/" .. p[3]
        else
            path = "/api/schedule/" .. p[1]
        end
        requests[i] = wrk.format("GET", path, { ["Authorization"] = p[2] })
    end
end

function request()
    return requests[math.random(1, #requests)]
end
