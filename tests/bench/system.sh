# shellcheck shell=bash disable=SC2034
# The whole system for a benchmark (tests/bench/run, tests/bench/catalogue): the daemons, built
# optimised and started on a throwaway cluster, the school of tests/bench/seed.sql, a pool of signed
# users, and measurements under wrk or pgbench with the CPU and peak memory of every process.
# Source it after deploy/local/lib.sh and lib.sh; it only defines functions and variables.
#
# The caller sets: ROOT, BUILD (the build folder), USERS (what seed.sql writes), POOL_SIZE (users to
# sign), WARMUP and DURATION (seconds of each measurement), and calls system_settings (THREADS,
# PG_POOL_SIZE, BENCH_TRANSPORT) and read_daemons first. `cleanup` is its EXIT trap: it stops every
# daemon, then what lib.sh started. run_load's pgbench needs PGBENCH_CMD, PGBENCH_CLIENTS and
# PGBENCH_JOBS (lib.sh's bench_pgbench_init).

# The settings of the daemons from the environment (README "Measuring it").
system_settings() {
    DAEMON_THREADS=${THREADS:-$(nproc)}
    DAEMON_POOL=${PG_POOL_SIZE:-5}
    TRANSPORT=${BENCH_TRANSPORT:-unix}
    [[ $TRANSPORT == unix || $TRANSPORT == tcp ]] || ls_die "BENCH_TRANSPORT must be unix or tcp, not '$TRANSPORT'"
}

# ---------------------------------------------------------------- the system

# The daemons in the order of every table: name, binary, database ("-": none). The BFF is first.
DAEMONS="
bff           bff/bff                                      -
auth          services/auth/auth-service                   auth
teachers      services/teachers/teachers-service           teachers
students      services/students/students-service           students
groups        services/groups/groups-service               groups
calendar      services/calendar/calendar-service           calendar
notification  services/notification/notification-service   notification
payment       services/payment/payment-service             payment
"
NAMES=()
declare -A BIN DB PORT PID

read_daemons() {
    local name bin db
    while read -r name bin db; do
        [[ -z $name ]] && continue
        NAMES+=("$name")
        BIN[$name]=$bin
        DB[$name]=$db
    done <<<"$DAEMONS"
}

build() {
    local targets=() name
    for name in "${NAMES[@]}"; do targets+=("${BIN[$name]}"); done
    bench_build "$ROOT" "$BUILD" "${targets[@]}" bff/tma-sign
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    # timeout passes the TERM on to the load generator it runs.
    [[ -n $BENCH_CHILD_PID ]] && ls_stop_pid "$BENCH_CHILD_PID" 5
    BENCH_CHILD_PID=""
    local name
    for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null; done
    for name in "${!PID[@]}"; do ls_stop_pid "${PID[$name]}" 10; done
    PID=()
    bench_cleanup_common
    exit "$rc"
}

# Every daemon gets every service's URL (the BFF needs them all, calendar and groups some): its Unix
# socket (BENCH_TRANSPORT=unix) or its TCP port (tcp). Services listen on TCP either way, for wrk.
start_system() {
    local name url_env=() password log bin listen
    [[ $TRANSPORT == tcp ]] || ls_unix_socket_fits "$(bench_sock notification)" ||
        ls_die "$(bench_sock notification) is too long for a Unix socket: set a shorter TMPDIR"
    TOKEN=$(ls_random_hex 32)
    BOT_TOKEN="$((RANDOM * 32768 + RANDOM)):$(ls_random_hex 17)"
    for name in "${NAMES[@]}"; do
        PORT[$name]=$(bench_free_port)
        # two picks of the same free port would make the second daemon fail to bind: pick again
        while [[ $(printf '%s\n' "${PORT[@]}" | sort | uniq -d) != "" ]]; do PORT[$name]=$(bench_free_port); done
        [[ $name == bff ]] && continue
        if [[ $TRANSPORT == unix ]]; then
            url_env+=("${name^^}_URL=unix:$(bench_sock "$name")")
        else
            url_env+=("${name^^}_URL=http://127.0.0.1:${PORT[$name]}")
        fi
    done
    for name in "${NAMES[@]}"; do
        listen="127.0.0.1:${PORT[$name]}"
        [[ $TRANSPORT == unix && $name != bff ]] && listen+=",unix:$(bench_sock "$name")"
        local env=(LISTEN="$listen" INTERNAL_TOKEN="$TOKEN" LOG_LEVEL=warn
            THREADS="$DAEMON_THREADS" "${url_env[@]}")
        # Started by root, a daemon must switch to an unprivileged user once its sockets are bound.
        ls_is_root && env+=(RUN_AS="${LS_RUN_AS:-nobody}")
        if [[ ${DB[$name]} != - ]]; then
            password=$(ls_random_hex 16)
            ls_pg_provision_db "${DB[$name]}" "$password"
            env+=(DATABASE_URL="$(ls_pg_url "${DB[$name]}" "$password")" PG_POOL_SIZE="$DAEMON_POOL"
                MIGRATIONS_DIR="$ROOT/migrations/${DB[$name]}")
        fi
        case $name in
        auth) env+=(AUTH_DATA_KEY="$(ls_random_hex 32)") ;;
        # The rate limits run (their cost is part of the figures) but never refuse: the load comes
        # from one address and a small pool of users, far above what a person does.
        bff) env+=(BOT_TOKEN="$BOT_TOKEN" RATE_READ_PER_S=1000000 RATE_READ_BURST=1000000
            RATE_WRITE_PER_S=1000000 RATE_WRITE_BURST=1000000 RATE_ADDR_PER_S=1000000
            RATE_ADDR_BURST=1000000) ;;
        esac
        bin=$BUILD/${BIN[$name]}
        [[ -x $bin ]] || ls_die "$bin was not built"
        log=$BENCH_TMP/$name.log
        # Access logs off (warn): one log line per request would be a measurement of stdout.
        env "${env[@]}" "$bin" >"$log" 2>&1 </dev/null &
        PID[$name]=$!
    done
    for name in "${NAMES[@]}"; do
        bench_wait_ready "$name" "http://127.0.0.1:${PORT[$name]}" "${PID[$name]}" "$BENCH_TMP/$name.log"
        if [[ $TRANSPORT == unix && $name != bff ]]; then
            bench_wait_ready "$name" "unix:$(bench_sock "$name")" "${PID[$name]}" "$BENCH_TMP/$name.log"
        fi
    done
}

# ---------------------------------------------------------------- the school

# The share of the services' table pages that the visibility map marks all-visible, in percent.
visible_pages() {
    local db pages=0 visible=0 p v
    for db in $(printf '%s\n' "${DB[@]}" | grep -vx -- -); do
        read -r p v < <(ls_psql "$db" "SELECT COALESCE(sum(relpages), 0), COALESCE(sum(relallvisible), 0)
            FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace" | tr '|' ' ')
        pages=$((pages + p)) visible=$((visible + v))
    done
    awk -v p="$pages" -v v="$visible" 'BEGIN {printf "%.0f", (p > 0 ? 100 * v / p : 100)}'
}

# The school: seed.sql, then what a benchmark adds to it (tests/bench/catalogue: catalogue.sql).
SEED_FILES=("$ROOT/tests/bench/seed.sql")

# sql_script DB: the psql script on stdin as the cluster's superuser (a script may \connect
# elsewhere), stopping at the first error; rows unaligned, without headers.
sql_script() {
    PGPASSWORD=$LS_PG_PASSWORD "$LS_PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$LS_PG_SOCK" \
        -p "$LS_PG_PORT" -U "$LS_PG_SUPERUSER" -d "$1" -f -
}

# A school's database that has been running a while is vacuumed (autovacuum), so index-only scans
# skip the heap. seed.sql's VACUUM runs right after its inserts, while the daemons already poll their
# databases; one of their snapshots can make it leave the visibility map unset (seen: most tables at
# 0 %, every lesson_participants lookup going to the heap). Vacuum again once the inserts are old.
settle_visibility() {
    local db try
    for try in 1 2 3; do
        VISIBLE=$(visible_pages)
        ((VISIBLE >= 95)) && return 0
        sleep 1
        for db in $(printf '%s\n' "${DB[@]}" | grep -vx -- -); do ls_psql "$db" "VACUUM" >/dev/null; done
    done
    VISIBLE=$(visible_pages)
    ls_say "warning: only ${VISIBLE}% of the tables' pages are all-visible after VACUUM"
}

seed() {
    local file
    for file in "${SEED_FILES[@]}"; do
        sql_script postgres <"$file" >"$BENCH_TMP/seed.out" 2>&1 || {
            cat "$BENCH_TMP/seed.out" >&2
            ls_die "seeding the school failed (${file#"$ROOT"/})"
        }
    done
    settle_visibility
    SCHOOL=$(
        printf '%s users, ' "$(ls_psql auth 'SELECT count(*) FROM users')"
        printf '%s teacher profiles, ' "$(ls_psql teachers 'SELECT count(*) FROM teachers')"
        printf '%s student profiles, ' "$(ls_psql students 'SELECT count(*) FROM students')"
        printf '%s groups with %s members, ' "$(ls_psql groups 'SELECT count(*) FROM groups')" \
            "$(ls_psql groups 'SELECT count(*) FROM group_members')"
        printf '%s lessons with %s participants, ' "$(ls_psql calendar 'SELECT count(*) FROM lessons')" \
            "$(ls_psql calendar 'SELECT count(*) FROM lesson_participants')"
        printf '%s notifications; %s %% of the tables\x27 pages all-visible (vacuumed)' \
            "$(ls_psql notification 'SELECT count(*) FROM notifications')" "$VISIBLE"
    )
}

# The pool of signed init data: every k-th person (a tenth of them teachers, as in the school), each
# with the group they teach or their first group. A Lua file for the wrk scripts.
sign_pool() {
    local step=$((USERS / POOL_SIZE)) id group auth n=0
    POOL=$BENCH_TMP/pool.lua
    ls_psql groups "SELECT u, COALESCE((SELECT min(id::text) FROM groups WHERE teacher_telegram_id = u),
                                       (SELECT min(group_id::text) FROM group_members WHERE student_telegram_id = u))
                    FROM generate_series($step, $USERS, $step) AS u ORDER BY u" >"$BENCH_TMP/pool.txt"
    {
        echo "-- $POOL_SIZE people of the benchmark's school: telegram id, Authorization value, a group of theirs"
        echo "return {"
        while IFS='|' read -r id group; do
            [[ $id =~ ^[0-9]+$ && -n $group ]] || ls_die "person $id of the pool has no group"
            auth=$(BOT_TOKEN=$BOT_TOKEN "$BUILD/bff/tma-sign" --id "$id" --first-name "First$id" \
                --last-name "Last$id" --username "user$id") || ls_die "tma-sign failed"
            [[ $auth == tma\ * && $auth != *[\"\\]* ]] || ls_die "unexpected output of tma-sign: $auth"
            printf '{%s, "%s", "%s"},\n' "$id" "$auth" "$group"
            n=$((n + 1))
        done <"$BENCH_TMP/pool.txt"
        echo "}"
    } >"$POOL"
    [[ $n -eq $POOL_SIZE ]] || ls_die "signed $n people, expected $POOL_SIZE"
    FIRST_ID=$(head -n 1 "$BENCH_TMP/pool.txt" | cut -d'|' -f1)
    FIRST_GROUP=$(head -n 1 "$BENCH_TMP/pool.txt" | cut -d'|' -f2)
    FIRST_AUTH=$(sed -n '3s/^{[0-9]*, "\([^"]*\)".*/\1/p' "$POOL")
}

# expect_view PATH: the BFF answers 200 with a complete view (not partial) for the first person of
# the pool, so that we measure the views and not their error paths.
expect_view() {
    local body code
    body=$BENCH_TMP/view.json
    code=$(curl -s -o "$body" -m 5 --noproxy '*' -w '%{http_code}' -H "Authorization: $FIRST_AUTH" \
        "http://127.0.0.1:${PORT[bff]}$1")
    if [[ $code != 200 ]] || grep -q '"partial":true' "$body"; then
        head -c 2000 "$body" >&2
        echo >&2
        ls_die "GET $1 through the BFF answered $code or a partial view: not measuring"
    fi
    grep -q "$2" "$body" || { head -c 2000 "$body" >&2; ls_die "GET $1: the view has no $2"; }
}

# ---------------------------------------------------------------- measuring

declare -A RPS P50 P99 NON2XX ERRS CPU HWM LABEL NOTE
KEYS=()

pids_in_order() {
    local name
    for name in "${NAMES[@]}"; do printf '%s ' "${PID[$name]}"; done
}

# VmHWM is the peak since start, or since "5" was written to clear_refs (Linux >= 4.0): reset it
# before each measurement, so that each row shows its own peak.
reset_hwm() {
    local name
    for name in "${NAMES[@]}"; do echo 5 >"/proc/${PID[$name]}/clear_refs" 2>/dev/null || true; done
}

# The peak of each daemon in kB, in the order of NAMES; every daemon must still run.
read_hwm() {
    local name v out=""
    for name in "${NAMES[@]}"; do
        ls_alive "${PID[$name]}" || { tail -n 20 "$BENCH_TMP/$name.log" >&2; ls_die "$name died during the run"; }
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/${PID[$name]}/status")
        out+="$v "
    done
    printf '%s\n' "$out"
}

# run_load KIND SECONDS OUTFILE [WRK-ARGS...]: one run of pgbench (KIND pgbench) or wrk (KIND wrk).
run_load() {
    local kind=$1 seconds=$2 out=$3
    shift 3
    if [[ $kind == pgbench ]]; then
        bench_run_bounded $((seconds + 60)) "$out" "${PGBENCH_CMD[@]}" -n -S -M prepared \
            -c "$PGBENCH_CLIENTS" -j "$PGBENCH_JOBS" -T "$seconds" bench_pgbench
    else
        bench_run_bounded $((seconds + 60)) "$out" wrk -d"${seconds}s" --latency "$@"
    fi
}

# measure KEY LABEL KIND [WRK-ARGS...]: the load for WARMUP seconds, then for DURATION seconds with
# the CPU and peak memory of every process accounted.
measure() {
    local key=$1 label=$2 kind=$3 c0 c1 out=$BENCH_TMP/$1.out
    shift 3
    KEYS+=("$key")
    LABEL[$key]=$label
    ls_say "measuring: $label (${WARMUP}s + ${DURATION}s)"
    reset_hwm
    if ((WARMUP > 0)); then
        run_load "$kind" "$WARMUP" "$BENCH_TMP/$key-warmup.out" "$@" ||
            { cat "$BENCH_TMP/$key-warmup.out" >&2; ls_die "warm-up of $label failed"; }
    fi
    # shellcheck disable=SC2046 # one word per pid
    c0=$(bench_cpu_snapshot $(pids_in_order))
    run_load "$kind" "$DURATION" "$out" "$@" || { cat "$out" >&2; ls_die "$label failed"; }
    # shellcheck disable=SC2046
    c1=$(bench_cpu_snapshot $(pids_in_order))
    CPU[$key]=$(bench_cpu_split "${#NAMES[@]}" "$c0" "$c1")
    HWM[$key]=$(read_hwm)
}

# measure_wrk KEY LABEL WRK-ARGS...: environment for the script comes from the caller.
measure_wrk() {
    local key=$1 label=$2
    shift 2
    measure "$key" "$label" wrk "$@"
    bench_parse_wrk "$BENCH_TMP/$key.out" || { cat "$BENCH_TMP/$key.out" >&2; ls_die "could not read wrk's results"; }
    RPS[$key]=$WRK_RPS
    P50[$key]=$WRK_P50
    P99[$key]=$WRK_P99
    NON2XX[$key]=$WRK_NON2XX
    ERRS[$key]=$WRK_ERRORS
}

# system_up EXTRA_CONNECTIONS [SETTING...]: the cluster (BENCH_PG_SETTINGS and the SETTINGs given as
# name=value), the daemons, the school and the pool of signed users.
system_up() {
    local extra=$1 settings=() kv
    shift
    for kv in ${BENCH_PG_SETTINGS:-} "$@"; do
        [[ $kv =~ ^[a-z_]+=[A-Za-z0-9_.]+$ ]] || ls_die "BENCH_PG_SETTINGS: '$kv' is not name=value"
        settings+=("-c $kv")
    done
    ls_say "starting a throwaway PostgreSQL cluster"
    # 6 services x PG_POOL_SIZE, the caller's own clients, psql
    bench_start_cluster $((6 * DAEMON_POOL + extra + 20)) "${settings[@]}"
    ls_say "starting the system (THREADS=$DAEMON_THREADS PG_POOL_SIZE=$DAEMON_POOL BENCH_TRANSPORT=$TRANSPORT)"
    start_system
    ls_say "writing the school (${SEED_FILES[*]#"$ROOT"/})"
    seed
    ls_say "$SCHOOL"
    ls_say "signing $POOL_SIZE users with tma-sign"
    sign_pool
}
