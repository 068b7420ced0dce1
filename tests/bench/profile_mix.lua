-- wrk script for tests/bench/run: one of the calls a profile view makes (bff/profile.c, a person
-- reading their own profile), sent directly to its service, for random people of the pool the BFF
-- measurement uses.
--   BENCH_POOL   the pool file of bff_view.lua (only the telegram ids are used)
--   BENCH_TOKEN  the services' INTERNAL_TOKEN
--   BENCH_CALL   which call, 1-6 (the order of bff/profile.c):
--                1 auth GET /users/{id}             4 groups GET /groups?person_id={id}&limit=201
--                2 teachers GET /teachers/{id}      5 calendar GET /lessons?telegram_id={id}&from=now&limit=21
--                3 students GET /students/{id}      6 payment GET /users/{id}/payments?limit=21
-- wrk talks to one address per run, so tests/bench/run runs this once per call against its service
-- and combines the six rates in the proportions of a profile view.

local pool_file, token = os.getenv("BENCH_POOL"), os.getenv("BENCH_TOKEN")
local call = tonumber(os.getenv("BENCH_CALL") or "")
if pool_file == nil or token == nil or call == nil or call < 1 or call > 6 then
    error("profile_mix.lua: set BENCH_POOL, BENCH_TOKEN and BENCH_CALL (1-6)")
end

local paths = {
    function(id, now) return "/users/" .. id end,
    function(id, now) return "/teachers/" .. id end,
    function(id, now) return "/students/" .. id end,
    function(id, now) return "/groups?person_id=" .. id .. "&limit=201" end,
    function(id, now) return "/lessons?telegram_id=" .. id .. "&from=" .. now .. "&limit=21" end,
    function(id, now) return "/users/" .. id .. "/payments?limit=21" end,
}

-- Each wrk thread has its own Lua state: number them here so that their random sequences differ.
local next_thread = 0
function setup(thread)
    next_thread = next_thread + 1
    thread:set("thread_no", next_thread)
end

local ids, headers
function init(args)
    math.randomseed(os.time() * 1000 + (thread_no or 0))
    ids = {}
    for i, p in ipairs(dofile(pool_file)) do
        ids[i] = p[1]
    end
    headers = { ["Authorization"] = "Bearer " .. token }
end

function request()
    local id = ids[math.random(1, #ids)]
    -- as the BFF does: the actor is the person, lessons from the current second on
    headers["X-Actor-Telegram-Id"] = tostring(id)
    return wrk.format("GET", paths[call](id, os.date("!%Y-%m-%dT%H:%M:%SZ")), headers)
end
