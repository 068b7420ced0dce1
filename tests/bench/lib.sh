# shellcheck shell=bash disable=SC2034
# Shared by the benchmarks (tests/bench/auth-get, run, catalogue): tools, an optimised build, a
# throwaway PostgreSQL cluster tuned for reads, bounded load runs, wrk's output and CPU accounting.
# Source it after deploy/local/lib.sh; it only defines functions and BENCH_* variables.
#
# State the caller owns and cleans up (bench_cleanup_common does it): BENCH_TMP (a private folder),
# BENCH_PGDATA (the cluster), BENCH_CHILD_PID (the load generator running now).

BENCH_TMP=""
BENCH_PGDATA=""
BENCH_CHILD_PID=""

# ---------------------------------------------------------------- tools

# wrk (the load generator) and ps (procps, for the CPU accounting) are not build dependencies, so
# LS_PACKAGES does not have them; all are installed before anything is looked for. pgbench comes
# with the PostgreSQL server package (postgresql-15 on Debian 12), next to initdb. Sets LS_PG_BIN,
# PGBENCH.
bench_ensure_tools() {
    local tools=()
    command -v wrk >/dev/null || tools+=(wrk)
    command -v ps >/dev/null || tools+=(procps)
    ls_ensure_packages "${LS_PACKAGES[@]}" "${tools[@]}"
    LS_PG_BIN=$(ls_pg_bindir) || ls_die "PostgreSQL server binaries not found (install postgresql or set LS_PGBIN)"
    if [[ -x $LS_PG_BIN/pgbench ]]; then
        PGBENCH=$LS_PG_BIN/pgbench
    else
        PGBENCH=$(command -v pgbench) || ls_die "pgbench not found: install postgresql-contrib (Debian: it ships with postgresql-NN)"
    fi
    command -v curl >/dev/null || ls_die "curl not found"
}

# ---------------------------------------------------------------- building

# bench_build SOURCE BUILD TARGET...: only the targets asked for, so that a half-written target
# elsewhere in the tree does not stop a benchmark. A folder configured earlier is reused as it is,
# so check that it is optimised.
bench_build() {
    local src=$1 build=$2 type
    shift 2
    ls_configure "$src" "$build" --buildtype=release || ls_die "meson setup failed"
    type=$(meson introspect --buildoptions "$build" 2>/dev/null |
        python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"))' 2>/dev/null || true)
    [[ $type == release ]] || ls_say "warning: $build has buildtype '${type:-unknown}', not release: the numbers are not comparable"
    # Regenerate first when a meson.build changed, so that new targets are known.
    ninja -C "$build" build.ninja >/dev/null || ls_die "meson could not regenerate $build"
    ninja -C "$build" "$@" || ls_die "building $* failed"
}

# ---------------------------------------------------------------- processes

# bench_run_bounded SECONDS OUTFILE COMMAND...: runs COMMAND with its output in OUTFILE, killed after
# SECONDS. In the background and waited for, so that INT/TERM reach the caller's trap at once.
bench_run_bounded() {
    local limit=$1 out=$2 rc=0
    shift 2
    timeout -k 5 "$limit" "$@" >"$out" 2>&1 &
    BENCH_CHILD_PID=$!
    wait "$BENCH_CHILD_PID" || rc=$?
    BENCH_CHILD_PID=""
    return "$rc"
}

bench_free_port() {
    local port i
    for ((i = 0; i < 50; i++)); do
        port=$((20000 + RANDOM % 30000))
        if ! command -v ss >/dev/null || [[ -z $(ss -Hltn "sport = :$port" 2>/dev/null) ]]; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    ls_die "no free TCP port found"
}

# bench_sock NAME: the Unix socket service NAME listens on (BENCH_TRANSPORT=unix), in BENCH_TMP.
bench_sock() { printf '%s/%s.sock\n' "$BENCH_TMP" "$1"; }

# bench_wait_ready NAME URL PID LOG: /readyz answers 200 within 30 s (migrations run before a daemon
# listens), or the log is shown and we stop.
bench_wait_ready() {
    local name=$1 url=$2 pid=$3 log=$4 tries
    for ((tries = 0; tries < 300; tries++)); do
        ls_http_ok "$url/readyz" && return 0
        if ! ls_alive "$pid"; then
            tail -n 30 "$log" >&2
            ls_die "$name exited during start-up (log above)"
        fi
        sleep 0.1
    done
    tail -n 30 "$log" >&2
    ls_die "$name was not ready within 30 s"
}

# Stops what the helpers started: the load generator, then the cluster, then the folder. The
# caller stops its daemons first (they hold connections to the cluster).
bench_cleanup_common() {
    [[ -n $BENCH_CHILD_PID ]] && ls_stop_pid "$BENCH_CHILD_PID" 5
    [[ -n $BENCH_PGDATA ]] && ls_pg_stop "$BENCH_PGDATA" fast
    [[ -n $BENCH_TMP ]] && rm -rf "$BENCH_TMP"
    BENCH_CHILD_PID="" BENCH_PGDATA="" BENCH_TMP=""
}

# ---------------------------------------------------------------- PostgreSQL

# bench_start_cluster MAX_CONNECTIONS ["-c name=value"...]: a throwaway cluster in a new BENCH_TMP. One cluster for every
# measurement, so all see the same settings: the data fits in shared_buffers; durability settings
# only matter for the seeding (reads do not write WAL); autovacuum off so that it cannot wake up
# during a measurement (the seeding ends with VACUUM ANALYZE).
bench_start_cluster() {
    local max_conn=$1
    shift
    LS_PG_RUNAS=$(ls_pg_runas)
    BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ls-bench.XXXXXX")
    chmod 711 "$BENCH_TMP" # the server's user must reach its folders in here
    ls_pg_check_reachable "$BENCH_TMP"
    BENCH_PGDATA="$BENCH_TMP/pg/data"
    LS_PG_SOCK="$BENCH_TMP/pg/sock"
    LS_PG_PORT=$((20000 + RANDOM % 30000)) # socket only: the number just names the socket file
    LS_PG_SUPERUSER=ls_bench_admin
    LS_PG_PASSWORD=$(ls_random_hex 16)
    ls_pg_socket_fits "$LS_PG_SOCK" || ls_die "socket path too long: $LS_PG_SOCK (set TMPDIR to a shorter folder)"
    ls_pg_sockdir "$BENCH_TMP/pg" "$LS_PG_SOCK" # daemons started by root connect as their RUN_AS user

    ls_pg_init "$BENCH_PGDATA" "$LS_PG_SUPERUSER" "$LS_PG_PASSWORD" --no-sync || ls_die "initdb failed"
    ls_pg_start "$BENCH_PGDATA" "$LS_PG_SOCK" "$LS_PG_PORT" "$BENCH_TMP/pg/server.log" \
        "-c shared_buffers=128MB" "-c max_connections=$max_conn" "-c autovacuum=off" \
        "-c fsync=off" "-c synchronous_commit=off" "-c full_page_writes=off" "$@" || {
        cat "$BENCH_TMP/pg/server.log" >&2
        ls_die "the benchmark cluster did not start"
    }
}

# pgbench as the cluster's superuser over the same Unix socket the daemons use (an array, not a
# function, so that timeout can run it).
bench_pgbench_cmd() {
    PGBENCH_CMD=(env PGPASSWORD="$LS_PG_PASSWORD" "$PGBENCH" -h "$LS_PG_SOCK" -p "$LS_PG_PORT" -U "$LS_PG_SUPERUSER")
}

# bench_pgbench_init SCALE: pgbench's tables in their own database, bench_pgbench.
bench_pgbench_init() {
    bench_pgbench_cmd
    ls_psql postgres "CREATE DATABASE bench_pgbench"
    bench_run_bounded 600 "$BENCH_TMP/pgbench-init.out" "${PGBENCH_CMD[@]}" -i -q -s "$1" bench_pgbench || {
        cat "$BENCH_TMP/pgbench-init.out" >&2
        ls_die "pgbench -i failed"
    }
}

# ---------------------------------------------------------------- CPU accounting

# bench_stat_fields PID N,M...: the sum of those fields of /proc/PID/stat, counted after the command
# name (which may hold spaces); 0 for a process that is gone.
bench_stat_fields() {
    { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null || true; } |
        awk -v f="$2" 'NR == 1 {n = split(f, a, ","); for (i = 1; i <= n; i++) s += $a[i]} END {print s + 0}'
}

# The cluster: the postmaster, its live children, and (cutime + cstime) the children it has
# reaped, so that backends that come and go within a run (pgbench's) are counted too.
bench_postgres_ticks() {
    local pm pid sum
    pm=$(head -n 1 "$BENCH_PGDATA/postmaster.pid")
    sum=$(bench_stat_fields "$pm" 12,13,14,15)
    for pid in $(ps -o pid= --ppid "$pm"); do
        sum=$((sum + $(bench_stat_fields "$pid" 12,13)))
    done
    printf '%s\n' "$sum"
}

# bench_cpu_snapshot [PID...]: "t1 … tN postgres loadgen busy irq steal uptime", in clock ticks of
# user + system time:
#   t1 … tN  each PID given (a daemon; 0 when empty or gone)
#   loadgen  our own reaped children (timeout and wrk or pgbench, reaped by the time the run ends)
#   busy     user + system + interrupt time of every core
#   irq      the interrupt part alone (loopback TCP is handled there; no process is charged for it)
#   steal    time the hypervisor gave to other virtual machines
#   uptime   seconds, to know how long the run really took
bench_cpu_snapshot() {
    local pid out=""
    for pid in "$@"; do
        if [[ -n $pid ]]; then out+="$(bench_stat_fields "$pid" 12,13) "; else out+="0 "; fi
    done
    printf '%s%s %s %s %s\n' "$out" "$(bench_postgres_ticks)" "$(bench_stat_fields $$ 14,15)" \
        "$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $7 + $8, $9}' /proc/stat)" "$(awk '{print $1}' /proc/uptime)"
}

# bench_cpu_split N "SNAPSHOT0" "SNAPSHOT1": "p1 … pN postgres% loadgen% irq% others% steal%" for
# snapshots of N daemons; 100% = every core busy.
bench_cpu_split() {
    awk -v n="$1" -v a="$2" -v b="$3" -v hz="$(getconf CLK_TCK)" -v cores="$(nproc)" 'BEGIN {
        split(a, x); split(b, y); m = n + 6
        t = (y[m] - x[m]) * hz * cores / 100
        if (t <= 0) t = 1
        for (i = 1; i < m; i++) d[i] = y[i] - x[i]
        # busy minus everything charged to a process we know, minus irq: somebody else
        other = d[n + 3] - d[n + 4]
        for (i = 1; i <= n + 2; i++) other -= d[i]
        if (other < 0) other = 0
        for (i = 1; i <= n + 2; i++) printf "%.1f ", d[i] / t
        printf "%.1f %.1f %.1f\n", d[n + 4] / t, other / t, d[n + 5] / t
    }'
}

# ---------------------------------------------------------------- wrk's output

# wrk prints latencies as 1.23us / 4.56ms / 1.20s: in milliseconds.
bench_to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.2f", v * 60000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
        else { exit 1 }
    }'
}

# bench_parse_wrk OUTFILE: sets WRK_RPS, WRK_P50 and WRK_P99 (ms), WRK_NON2XX (count of answers
# that were not 2xx/3xx) and WRK_ERRORS (wrk's socket errors line, or empty). Returns 1 when the
# output cannot be read.
bench_parse_wrk() {
    local out=$1
    WRK_ERRORS=$(grep -E '^ *Socket errors:' "$out" | sed 's/^ *Socket errors: *//' || true)
    WRK_NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF; exit}' "$out")
    WRK_NON2XX=${WRK_NON2XX:-0}
    WRK_RPS=$(awk '/^Requests\/sec:/ {print $2; exit}' "$out")
    # wrk 4 corrects its histogram for coordinated omission: a request stalled for X ms also counts
    # the requests its connection would have sent meanwhile, so a few stalls move p99 a lot.
    WRK_P50=$(awk '$1 == "50%" {print $2; exit}' "$out")
    WRK_P99=$(awk '$1 == "99%" {print $2; exit}' "$out")
    [[ $WRK_RPS =~ ^[0-9.]+$ && -n $WRK_P50 && -n $WRK_P99 ]] || return 1
    WRK_P50=$(bench_to_ms "$WRK_P50") && WRK_P99=$(bench_to_ms "$WRK_P99")
}
