-- wrk script for tests/bench/run: one of the BFF's views, each request signed for a random person of
-- a pool of pre-signed Telegram init data.
--   BENCH_POOL  a Lua file returning { {telegram_id, "tma <initData>", "<their group's uuid>"}, ... }
--               (written by tests/bench/run with tma-sign)
--   BENCH_VIEW  profile (GET /api/user/profile/{own id}), group (GET /api/groups/{own group}),
--               schedule (GET /api/schedule/{own id}, the next 7 days) or catalogue
--               (GET /api/catalogue/groups, one of the searches below, all equally often; for
--               tests/bench/catalogue)
-- Everybody reads their own view: the access rule then needs no extra call, as for most app users.

-- The catalogue's searches. Their words are found in very different shares of tests/bench/catalogue's
-- 100,000 groups (tests/bench/catalogue.sql), written as people type them.
local searches = {
    "q=conversation", -- 1 in 6 descriptions
    "q=Grammar", -- 1 in 6
    "q=EXAM", -- 1 in 9 titles
    "q=business", -- 1 in 50
    "q=pronunciation", -- 1 in 500
    "q=calligraphy", -- 10 groups
    "q=group%204242", -- 11 groups
    "q=zanzibar", -- none
    "q=conversation&language=fr&level=A1", -- a word and both filters
    "language=de&level=B2", -- the filters alone: the newest first
}

local pool_file = os.getenv("BENCH_POOL")
if pool_file == nil or pool_file == "" then
    error("bff_view.lua: set BENCH_POOL to the pool of signed init data")
end
local view = os.getenv("BENCH_VIEW") or "profile"
if view ~= "profile" and view ~= "group" and view ~= "schedule" and view ~= "catalogue" then
    error("bff_view.lua: BENCH_VIEW must be profile, group, schedule or catalogue")
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
    for _, p in ipairs(pool) do
        local paths
        if view == "profile" then
            paths = { "/api/user/profile/" .. p[1] }
        elseif view == "group" then
            paths = { "/api/groups/" .. p[3] }
        elseif view == "schedule" then
            paths = { "/api/schedule/" .. p[1] }
        else
            paths = {}
            for _, s in ipairs(searches) do
                paths[#paths + 1] = "/api/catalogue/groups?" .. s .. "&limit=20"
            end
        end
        for _, path in ipairs(paths) do
            requests[#requests + 1] = wrk.format("GET", path, { ["Authorization"] = p[2] })
        end
    end
end

function request()
    return requests[math.random(1, #requests)]
end
