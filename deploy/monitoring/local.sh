# shellcheck shell=bash disable=SC2034
# The monitoring of the local system, for deploy/local/up --monitoring and deploy/local/down:
# Prometheus, one prometheus-postgres-exporter per service database and Alertmanager, from Debian's
# packages, configured from deploy/monitoring/ into $LS_STATE_DIR/monitoring. Source it after
# deploy/local/lib.sh; it only defines functions and LS_MON_* values.
#
# Ports (127.0.0.1 only), each overridable: Prometheus LS_PROMETHEUS_PORT (9490), Alertmanager
# LS_ALERTMANAGER_PORT (9493), the exporters LS_PG_EXPORTER_PORT (9587) and the next ones, one per
# service database in LS_SERVICES order. Not the packages' own 9090/9093/9187: on a Debian machine
# with systemd, installing the packages starts their system services there.
#
# Layout: $LS_STATE_DIR/monitoring/{prometheus.yml,alerts.yml,alertmanager.yml,
# postgres-queries.yml,internal-token,pg-password,data/}; logs in $LS_STATE_DIR/logs
# (prometheus.log, alertmanager.log, pg-exporter-<database>.log); pidfiles in run/monitoring/.

LS_MON_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LS_MON_PG_ROLE=ls_monitor

# ls_mon_init STATE_DIR RUN_DIR: the folders, ports and intervals of the monitoring of STATE_DIR.
ls_mon_init() {
    LS_MON_DIR="$1/monitoring"
    LS_MON_RUN="$2/monitoring"
    LS_MON_PROMETHEUS_PORT=${LS_PROMETHEUS_PORT:-9490}
    LS_MON_ALERTMANAGER_PORT=${LS_ALERTMANAGER_PORT:-9493}
    LS_MON_EXPORTER_PORT=${LS_PG_EXPORTER_PORT:-9587}
    # Short intervals: a local system is small, and alerts should move while one watches.
    LS_MON_SCRAPE_INTERVAL=${LS_SCRAPE_INTERVAL:-5s}
    LS_MON_STARTED=()
}

# ls_mon_databases: "database exporter-port" for every service database, in LS_SERVICES order.
ls_mon_databases() {
    local name bin port db i=0
    while read -r name bin port db; do
        [[ -z $name || $db == - ]] && continue
        printf '%s %s\n' "$db" $((LS_MON_EXPORTER_PORT + i))
        i=$((i + 1))
    done <<<"$LS_SERVICES"
}

# A pidfile's process is ours when it runs one of the packages' programs on our state folder.
ls_mon_cmdline() {
    printf '^/usr/bin/(prometheus|prometheus-alertmanager|prometheus-postgres-exporter) .*%s/' \
        "$(printf '%s' "$LS_MON_DIR" | sed 's/[][\.*^$+?(){}|]/\\&/g')"
}

# ls_mon_stop_recorded: stops the monitoring processes recorded in LS_MON_RUN (a previous up's);
# prints their names.
ls_mon_stop_recorded() {
    local f pid
    for f in "$LS_MON_RUN"/*.pid; do
        [[ -e $f ]] || continue
        pid=$(<"$f")
        if ls_pid_is "$pid" "$(ls_mon_cmdline)"; then
            basename "$f" .pid
            ls_stop_pid "$pid"
        fi
        rm -f "$f"
    done
}

ls_mon_port_free() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        ls_die "port $1 for $2 is already in use (move it with $3=...)"
    fi
}

ls_mon_check_ports() {
    local db port
    ls_mon_port_free "$LS_MON_PROMETHEUS_PORT" Prometheus LS_PROMETHEUS_PORT
    ls_mon_port_free "$LS_MON_ALERTMANAGER_PORT" Alertmanager LS_ALERTMANAGER_PORT
    while read -r db port; do
        ls_mon_port_free "$port" "the exporter of database $db" LS_PG_EXPORTER_PORT
    done < <(ls_mon_databases)
}

# ls_mon_provision_pg: the role the exporters connect as (pg_monitor: reads every session and
# statement, writes nothing), allowed into every service database; a new password each time.
# Needs the cluster of lib.sh's LS_PG_* and its superuser.
ls_mon_provision_pg() {
    local db port password
    password=$(ls_random_hex 24)
    if [[ -z $(ls_psql postgres "SELECT 1 FROM pg_roles WHERE rolname = '$LS_MON_PG_ROLE'") ]]; then
        ls_psql postgres "CREATE ROLE $LS_MON_PG_ROLE LOGIN PASSWORD '$password'"
    else
        ls_psql postgres "ALTER ROLE $LS_MON_PG_ROLE LOGIN PASSWORD '$password'"
    fi
    ls_psql postgres "GRANT pg_monitor TO $LS_MON_PG_ROLE"
    while read -r db port; do
        ls_psql postgres "GRANT CONNECT ON DATABASE \"$db\" TO $LS_MON_PG_ROLE"
    done < <(ls_mon_databases)
    install -d -m 700 "$LS_MON_DIR"
    (umask 077 && printf '%s' "$password" >"$LS_MON_DIR/pg-password")
}

# ls_mon_render INTERNAL_TOKEN PORT_OF_FUNCTION: the configuration in LS_MON_DIR from
# deploy/monitoring/, checked with promtool and amtool. PORT_OF_FUNCTION NAME prints the port of
# daemon NAME (auth, bff, ...).
ls_mon_render() {
    local token=$1 port_of=$2 name bin port db subst=()
    install -d -m 700 "$LS_MON_DIR" "$LS_MON_DIR/data" "$LS_MON_DIR/data/prometheus" "$LS_MON_DIR/data/alertmanager"
    install -d "$LS_MON_RUN"
    (umask 077 && printf '%s' "$token" >"$LS_MON_DIR/internal-token")
    cp "$LS_MON_SRC/alerts.yml" "$LS_MON_SRC/alertmanager.yml" "$LS_MON_SRC/postgres-queries.yml" "$LS_MON_DIR/"
    subst=(-e "s/@SCRAPE_INTERVAL@/$LS_MON_SCRAPE_INTERVAL/g" -e "s/@EVALUATION_INTERVAL@/$LS_MON_SCRAPE_INTERVAL/g"
        -e "s/@PROMETHEUS_PORT@/$LS_MON_PROMETHEUS_PORT/g" -e "s/@ALERTMANAGER_PORT@/$LS_MON_ALERTMANAGER_PORT/g")
    while read -r name bin port db; do
        [[ -z $name ]] && continue
        subst+=(-e "s/@${name^^}_PORT@/$("$port_of" "$name")/g")
    done <<<"$LS_SERVICES"
    while read -r db port; do
        subst+=(-e "s/@PG_EXPORTER_${db^^}_PORT@/$port/g")
    done < <(ls_mon_databases)
    sed "${subst[@]}" "$LS_MON_SRC/prometheus.yml" >"$LS_MON_DIR/prometheus.yml"
    if grep -n '^[^#]*@[A-Z_]*@' "$LS_MON_DIR/prometheus.yml" >&2; then
        ls_die "deploy/monitoring/prometheus.yml has placeholders up does not know (above)"
    fi
    # Every daemon is scraped under its own name (the binary's name: auth-service, bff, ...).
    while read -r name bin port db; do
        [[ -z $name ]] && continue
        grep -q "job_name: $(basename "$bin")\$" "$LS_MON_DIR/prometheus.yml" ||
            ls_die "deploy/monitoring/prometheus.yml has no job $(basename "$bin")"
    done <<<"$LS_SERVICES"
    promtool check config "$LS_MON_DIR/prometheus.yml" >"$LS_MON_DIR/check.out" 2>&1 || {
        cat "$LS_MON_DIR/check.out" >&2
        ls_die "promtool rejects $LS_MON_DIR/prometheus.yml"
    }
    amtool check-config "$LS_MON_DIR/alertmanager.yml" >"$LS_MON_DIR/check.out" 2>&1 || {
        cat "$LS_MON_DIR/check.out" >&2
        ls_die "amtool rejects $LS_MON_DIR/alertmanager.yml"
    }
    rm -f "$LS_MON_DIR/check.out"
}

# ls_mon_spawn NAME PORT READY_PATH ENV... -- PROGRAM ARGS...: starts one process in its own
# session, logging to LOGS/NAME.log; records it in LS_MON_RUN/NAME.pid, STARTED_PIDS and
# LS_MON_STARTED (name:port:pid:ready path).
ls_mon_spawn() {
    local name=$1 port=$2 ready=$3 env=() log="$LOGS/$1.log" pid
    shift 3
    while [[ $1 != -- ]]; do
        env+=("$1")
        shift
    done
    shift
    printf '\n==== %s starting (%s)\n' "$name" "$(date -Is)" >>"$log"
    env "${env[@]}" setsid "$@" >>"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$LS_MON_RUN/$name.pid"
    STARTED_PIDS+=("$pid")
    LS_MON_STARTED+=("$name:$port:$pid:$ready")
}

# ls_mon_start: the exporters, Alertmanager and Prometheus, on the cluster of LS_PG_SOCK/PORT.
ls_mon_start() {
    local db port uri
    while read -r db port; do
        uri="/$db?host=$(ls_urlencode "$LS_PG_SOCK")&port=$LS_PG_PORT&sslmode=disable"
        ls_mon_spawn "pg-exporter-$db" "$port" /metrics \
            DATA_SOURCE_URI="$uri" DATA_SOURCE_USER="$LS_MON_PG_ROLE" DATA_SOURCE_PASS_FILE="$LS_MON_DIR/pg-password" -- \
            /usr/bin/prometheus-postgres-exporter --web.listen-address="127.0.0.1:$port" \
            --extend.query-path="$LS_MON_DIR/postgres-queries.yml" --disable-default-metrics \
            --disable-settings-metrics --no-collector.database --no-collector.bgwriter
    done < <(ls_mon_databases)
    ls_mon_spawn alertmanager "$LS_MON_ALERTMANAGER_PORT" /-/ready -- \
        /usr/bin/prometheus-alertmanager --config.file="$LS_MON_DIR/alertmanager.yml" \
        --storage.path="$LS_MON_DIR/data/alertmanager" --web.listen-address="127.0.0.1:$LS_MON_ALERTMANAGER_PORT" \
        --cluster.listen-address=
    ls_mon_spawn prometheus "$LS_MON_PROMETHEUS_PORT" /-/ready -- \
        /usr/bin/prometheus --config.file="$LS_MON_DIR/prometheus.yml" \
        --storage.tsdb.path="$LS_MON_DIR/data/prometheus" --storage.tsdb.retention.time=15d \
        --web.listen-address="127.0.0.1:$LS_MON_PROMETHEUS_PORT"
}

# ls_mon_wait_ready: each process answers its readiness path within 30 s.
ls_mon_wait_ready() {
    local s name port pid ready tries=300
    for s in "${LS_MON_STARTED[@]}"; do
        IFS=: read -r name port pid ready <<<"$s"
        until ls_http_ok "http://127.0.0.1:$port$ready"; do
            if ! ls_alive "$pid" || ((tries-- <= 0)); then
                tail -n 20 "$LOGS/$name.log" >&2
                ls_die "$name did not start on port $port (log: $LOGS/$name.log)"
            fi
            sleep 0.1
        done
    done
}

# ls_mon_dead: prints the name of a monitoring process that exited, if any.
ls_mon_dead() {
    local s name port pid ready
    for s in "${LS_MON_STARTED[@]}"; do
        IFS=: read -r name port pid ready <<<"$s"
        ls_alive "$pid" || {
            printf '%s\n' "$name"
            return 0
        }
    done
    return 1
}

ls_mon_summary() {
    local s name port pid ready
    for s in "${LS_MON_STARTED[@]}"; do
        IFS=: read -r name port pid ready <<<"$s"
        printf '%-13s http://127.0.0.1:%-6s pid %-8s log %s\n' "${name#pg-}" "$port" "$pid" "$LOGS/$name.log"
    done
    echo "monitoring: Prometheus http://127.0.0.1:$LS_MON_PROMETHEUS_PORT/alerts, Alertmanager" \
        "http://127.0.0.1:$LS_MON_ALERTMANAGER_PORT; configuration $LS_MON_DIR"
}
