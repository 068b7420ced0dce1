# shellcheck shell=bash disable=SC2034,SC2153
# Shared by deploy/local/up, deploy/local/down and tests/run: packages, building and private
# PostgreSQL clusters. Source it; it only defines functions and LS_* constants.
#
# The PostgreSQL functions work on the cluster the caller describes in LS_PG_BIN (server binaries),
# LS_PG_RUNAS (the server's user; empty: ourselves), LS_PG_SOCK, LS_PG_PORT, LS_PG_SUPERUSER and
# LS_PG_PASSWORD.

# What a fresh Debian 12 machine needs to build, test and run the system.
LS_PACKAGES=(
    build-essential meson ninja-build pkg-config
    libh2o-evloop-dev libssl-dev libpq-dev libjson-c-dev libcurl4-openssl-dev libsodium-dev libseccomp-dev
    zlib1g-dev # the BFF gzips the Mini App's files once at start
    libcriterion-dev
    postgresql postgresql-contrib curl
    prometheus # its promtool checks every daemon's /metrics (tests/integration/itest_metrics.c)
)
# What deploy/local/up --monitoring adds (promtool and amtool come with the first and the last).
LS_MONITORING_PACKAGES=(prometheus prometheus-postgres-exporter prometheus-alertmanager)

# The daemons: name, binary (relative to the build folder), default port, database ("-": none).
# One line per daemon; deploy/local/up starts those whose binary exists.
LS_SERVICES="
bff           bff/bff                                         8080 -
auth          services/auth/auth-service                      8081 auth
teachers      services/teachers/teachers-service              8082 teachers
students      services/students/students-service              8083 students
groups        services/groups/groups-service                  8084 groups
calendar      services/calendar/calendar-service              8085 calendar
notification  services/notification/notification-service      8086 notification
payment       services/payment/payment-service                8087 payment
"

ls_say() { printf '%s\n' "$*" >&2; }
ls_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# 32 random bytes as 64 hex characters by default.
ls_random_hex() { od -An -tx1 -N"${1:-32}" /dev/urandom | tr -d ' \n'; }

ls_is_root() { [[ $(id -u) -eq 0 ]]; }

# ---------------------------------------------------------------- packages

ls_pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# Folder with initdb, pg_ctl, postgres and psql: $LS_PGBIN, else the newest Debian one, else PATH.
ls_pg_bindir() {
    if [[ -n ${LS_PGBIN:-} ]]; then
        printf '%s\n' "$LS_PGBIN"
        return 0
    fi
    local d
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k4 -V -r); do
        if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    return 1
}

# ls_ensure_packages [PACKAGE...]: installs what is missing of PACKAGEs (default: LS_PACKAGES) with
# apt-get when root; otherwise says what to install and exits 1. Every script that can be the first
# thing run on a machine calls it before it looks for any program. A machine that has everything
# does no apt work at all.
# shellcheck disable=SC2120 # the packages are optional
ls_ensure_packages() {
    local missing=() p wanted=("$@")
    [[ $# -gt 0 ]] || wanted=("${LS_PACKAGES[@]}")
    if ! command -v dpkg-query >/dev/null; then
        ls_say "note: not a Debian system (no dpkg-query); assuming ${wanted[*]} are present"
        return 0
    fi
    for p in "${wanted[@]}"; do
        ls_pkg_installed "$p" && continue
        # PostgreSQL installed some other way (e.g. LS_PGBIN) is good enough.
        if [[ $p == postgresql || $p == postgresql-contrib ]] && ls_pg_bindir >/dev/null; then
            continue
        fi
        missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if ! ls_is_root; then
        ls_say "missing packages: ${missing[*]}"
        ls_say "install them with:  sudo apt-get install ${missing[*]}"
        exit 1
    fi
    ls_say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------- building

# ls_configure SOURCE_DIR BUILD_DIR [meson setup options...]: configures a build folder once.
# An existing folder is reused as it is configured (each kind of build has its own folder). A
# folder that meson setup made and failed to configure is removed, so the next run starts clean.
ls_configure() {
    local src=$1 build=$2
    shift 2
    [[ -f $build/build.ninja ]] && return 0
    local made=0
    [[ -e $build ]] || made=1
    meson setup "$build" "$src" "$@" && return 0
    [[ $made -eq 1 ]] && rm -rf --one-file-system "$build"
    return 1
}

# ls_build SOURCE_DIR BUILD_DIR [meson setup options...]: configures once, then builds everything.
ls_build() {
    ls_configure "$@" && ninja -C "$2"
}

# ls_build_daemons BUILD_DIR: builds the daemons of LS_SERVICES that the build defines (so that a
# broken test does not keep the system from starting).
ls_build_daemons() {
    local build=$1 name bin port db targets=()
    # Regenerate first when a meson.build changed, so that newly added daemons are known.
    ninja -C "$build" build.ninja >/dev/null || return 1
    while read -r name bin port db; do
        [[ -z $name ]] && continue
        ninja -C "$build" -t query "$bin" >/dev/null 2>&1 && targets+=("$bin")
    done <<<"$LS_SERVICES"
    [[ ${#targets[@]} -eq 0 ]] && return 0
    ninja -C "$build" "${targets[@]}"
}

# ---------------------------------------------------------------- PostgreSQL

# PostgreSQL refuses to run as root: as root the server runs as "postgres".
ls_pg_runas() {
    if ls_is_root; then
        id postgres >/dev/null 2>&1 || ls_die "running as root needs the 'postgres' user (package postgresql)"
        printf 'postgres\n'
    fi
}

# ls_pg_tool TOOL ARGS...: runs a server tool as the server's user ($LS_PG_RUNAS; empty: ourselves).
ls_pg_tool() {
    local tool=$1
    shift
    if [[ -n ${LS_PG_RUNAS:-} ]]; then
        # From /: our working folder may be one the server's user cannot enter (the paths are absolute).
        (cd / && runuser -u "$LS_PG_RUNAS" -- "$LS_PG_BIN/$tool" "$@")
    else
        "$LS_PG_BIN/$tool" "$@"
    fi
}

# ls_pg_mkdir DIR...: folders the server's user owns (mode 700).
ls_pg_mkdir() {
    if [[ -n ${LS_PG_RUNAS:-} ]]; then
        install -d -m 700 -o "$LS_PG_RUNAS" -g "$(id -gn "$LS_PG_RUNAS")" "$@"
    else
        install -d -m 700 "$@"
    fi
}

# ls_pg_sockdir DIR...: folders on the way to the server's socket, owned by the server's user, that
# others may pass through (mode 711): the daemons connect after switching to their RUN_AS user
# (every role needs its password, local connections too: ls_pg_init).
ls_pg_sockdir() {
    ls_pg_mkdir "$@"
    chmod 711 "$@"
}

# Fails with a clear message when the server's user cannot reach a folder (e.g. a checkout in /root).
ls_pg_check_reachable() {
    [[ -z ${LS_PG_RUNAS:-} ]] && return 0
    runuser -u "$LS_PG_RUNAS" -- test -x "$1" ||
        ls_die "user $LS_PG_RUNAS cannot reach $1; choose a state folder it can reach (LS_STATE_DIR=...)"
}

# Unix socket paths are limited to 107 bytes ("<dir>/.s.PGSQL.<port>").
ls_pg_socket_fits() { [[ $((${#1} + 18)) -le 107 ]]; }

# ls_pg_init DATADIR SUPERUSER PASSWORD [initdb options...]: a new cluster where every connection,
# local or TCP, needs a password (scram-sha-256), so roles really need their own passwords.
ls_pg_init() {
    local data=$1 user=$2 password=$3
    shift 3
    local pwfile
    pwfile=$(dirname "$data")/.pwfile.$$
    (umask 077 && printf '%s\n' "$password" >"$pwfile")
    [[ -n ${LS_PG_RUNAS:-} ]] && chown "$LS_PG_RUNAS" "$pwfile"
    local rc=0
    ls_pg_tool initdb -D "$data" --username="$user" --pwfile="$pwfile" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --no-locale "$@" >/dev/null || rc=$?
    rm -f "$pwfile"
    return "$rc"
}

# ls_pg_start DATADIR SOCKDIR PORT LOGFILE [-c name=value...]: listens on the socket folder only.
ls_pg_start() {
    local data=$1 sock=$2 port=$3 log=$4
    shift 4
    local opts="-p $port -k $sock -c listen_addresses=''" o
    for o in "$@"; do opts+=" $o"; done
    ls_pg_tool pg_ctl -D "$data" -o "$opts" -l "$log" -w -t 60 start >/dev/null
}

ls_pg_running() { ls_pg_tool pg_ctl -D "$1" status >/dev/null 2>&1; }

# ls_pg_stop DATADIR [MODE]: stops the server if it runs; MODE fast by default.
ls_pg_stop() {
    [[ -f $1/postmaster.pid ]] || return 0
    ls_pg_tool pg_ctl -D "$1" -m "${2:-fast}" -w -t 60 stop >/dev/null 2>&1 ||
        ls_pg_tool pg_ctl -D "$1" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
}

# ls_psql DB SQL: runs SQL as the superuser of the cluster described by LS_PG_SOCK, LS_PG_PORT,
# LS_PG_SUPERUSER and LS_PG_PASSWORD; prints unaligned tuples.
ls_psql() {
    PGPASSWORD=$LS_PG_PASSWORD "$LS_PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
        -h "$LS_PG_SOCK" -p "$LS_PG_PORT" -U "$LS_PG_SUPERUSER" -d "$1" -c "$2"
}

# Nobody but superusers may connect to the maintenance databases.
ls_pg_lockdown() {
    ls_psql postgres "REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC"
}

# ls_pg_provision_db NAME PASSWORD: a LOGIN role NAME with PASSWORD owning database NAME, which only
# it (and superusers) may connect to. The SQL of tests/support/harness.c's lst_db_create, made
# idempotent: a second run keeps the data and resets the password. NAME is [a-z0-9_]; PASSWORD hex.
ls_pg_provision_db() {
    local name=$1 password=$2
    [[ $name =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || ls_die "bad database name: $name"
    [[ $password =~ ^[A-Za-z0-9]+$ ]] || ls_die "generated password for $name is not alphanumeric"
    if [[ -z $(ls_psql postgres "SELECT 1 FROM pg_roles WHERE rolname = '$name'") ]]; then
        ls_psql postgres "CREATE ROLE \"$name\" LOGIN PASSWORD '$password'"
    else
        ls_psql postgres "ALTER ROLE \"$name\" LOGIN PASSWORD '$password'"
    fi
    if [[ -z $(ls_psql postgres "SELECT 1 FROM pg_database WHERE datname = '$name'") ]]; then
        ls_psql postgres "CREATE DATABASE \"$name\" OWNER \"$name\""
    fi
    ls_psql postgres "REVOKE CONNECT, TEMPORARY ON DATABASE \"$name\" FROM PUBLIC"
    ls_psql postgres "GRANT CONNECT, TEMPORARY ON DATABASE \"$name\" TO \"$name\""
}

# ls_pg_url NAME PASSWORD: the libpq URI a service uses for its own database on the socket.
ls_pg_url() {
    printf 'postgresql://%s:%s@/%s?host=%s&port=%s\n' "$1" "$2" "$1" "$(ls_urlencode "$LS_PG_SOCK")" "$LS_PG_PORT"
}

ls_urlencode() {
    local s=$1 out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
        [A-Za-z0-9/._~-]) out+=$c ;;
        *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s\n' "$out"
}

# ---------------------------------------------------------------- processes

# ls_alive PID: the process runs (a zombie child of ours waiting to be reaped does not).
ls_alive() {
    kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}

# ls_wait_gone PID SECONDS: 0 once PID has exited, 1 if it is still there after SECONDS.
ls_wait_gone() {
    local pid=$1 tries=$(($2 * 10))
    while ls_alive "$pid"; do
        ((tries-- > 0)) || return 1
        sleep 0.1
    done
    return 0
}

# ls_stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10).
ls_stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! ls_wait_gone "$pid" "${2:-10}"; then
        ls_say "pid $pid ignored SIGTERM: killing it"
        kill -KILL "$pid" 2>/dev/null || true
        ls_wait_gone "$pid" 5 || true
    fi
}

# ls_http_ok URL: 0 when GET URL answers 200 within a second. URL may be unix:/path.sock/some/path
# (a daemon's Unix socket; the request goes to http://localhost/some/path on it).
ls_http_ok() {
    local url=$1 sock=()
    if [[ $url == unix:* ]]; then
        # The socket is the part up to ".sock"; what follows is the request path.
        [[ $url =~ ^unix:(/.*\.sock)(/.*)?$ ]] || return 1
        sock=(--unix-socket "${BASH_REMATCH[1]}")
        url="http://localhost${BASH_REMATCH[2]:-/}"
    fi
    [[ $(curl -s -o /dev/null -m 1 --noproxy '*' "${sock[@]}" -w '%{http_code}' "$url" 2>/dev/null) == 200 ]]
}

# ls_unix_socket_fits PATH: 0 when PATH fits a socket address (sun_path: 107 bytes and a NUL).
ls_unix_socket_fits() { [[ ${#1} -le 107 ]]; }

# ls_unix_socket_dir PREFERRED LONGEST_NAME: PREFERRED when PREFERRED/LONGEST_NAME fits a socket
# address (sun_path: 107 bytes), else a folder in /tmp named after PREFERRED (created, mode 711: the
# daemons reach their sockets after switching to RUN_AS; the sockets themselves are 0660).
ls_unix_socket_dir() {
    local dir=$1
    if ! ls_unix_socket_fits "$dir/$2"; then
        dir="/tmp/ls-run-$(printf '%s' "$1" | md5sum | cut -c1-12)"
        install -d -m 711 "$dir"
    fi
    printf '%s\n' "$dir"
}

# ls_pid_is PID REGEX: PID runs and its command line matches REGEX (guards against reused pids).
ls_pid_is() {
    [[ $1 =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null &&
        { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qE -- "$2"
}

# Command lines of deploy/local/up and of the daemons it starts from BUILD.
LS_UP_CMDLINE='(^| |/)up( |$)'
ls_daemon_cmdline() { printf '^%s/' "$(printf '%s' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g')"; }
