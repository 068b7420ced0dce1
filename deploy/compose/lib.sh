# shellcheck shell=bash disable=SC2034
# Shared by deploy/compose/up, deploy/compose/down and tests/container/run: the compose project and
# its .env. Source it after deploy/local/lib.sh; it only defines functions and LS_COMPOSE_* values.
#
# LS_COMPOSE_PROJECT (default ls) is the project's name (containers ls_bff_1, volumes ls_db-auth...);
# LS_COMPOSE_ENV (default deploy/compose/.env) its settings; LS_COMPOSE_BFF_PORT, when set, overrides
# the BFF's published port in .env.

LS_COMPOSE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LS_COMPOSE_FILE="$LS_COMPOSE_DIR/docker-compose.yml"
LS_COMPOSE_PROJECT=${LS_COMPOSE_PROJECT:-ls}
LS_COMPOSE_ENV=${LS_COMPOSE_ENV:-$LS_COMPOSE_DIR/.env}
# The services that have a database of their own, and every service's port.
LS_COMPOSE_DBS="auth teachers students groups calendar notification payment"
declare -gA LS_COMPOSE_PORTS=([bff]=8080 [auth]=8081 [teachers]=8082 [students]=8083 [groups]=8084
    [calendar]=8085 [notification]=8086 [payment]=8087)

# ls_compose ARGS...: docker-compose on this project, with its file and its .env.
ls_compose() {
    docker-compose -p "$LS_COMPOSE_PROJECT" --env-file "$LS_COMPOSE_ENV" -f "$LS_COMPOSE_FILE" "$@"
}

# ls_compose_env_get KEY: the value of KEY in the .env file (nothing when absent).
ls_compose_env_get() {
    [[ -f $LS_COMPOSE_ENV ]] || return 0
    sed -n "s/^$1=//p" "$LS_COMPOSE_ENV" | tail -n 1
}

# ls_compose_write_env ADMINS: a new .env with fresh secrets (mode 600). ADMINS: the telegram ids
# that become admins at first sign-in.
ls_compose_write_env() {
    local admins=$1 db tmp
    tmp=$(mktemp "$LS_COMPOSE_ENV.XXXXXX")
    {
        echo "# Settings of the compose system (deploy/compose/docker-compose.yml), written by"
        echo "# deploy/compose/up on $(date -u +%Y-%m-%dT%H:%M:%SZ) with fresh secrets. Never commit it."
        echo "# The database passwords are set in each database's volume when it is first made:"
        echo "# changing one here needs an ALTER ROLE too (or deploy/compose/down --volumes: all data lost)."
        echo "LS_COMPOSE_BFF_PORT=${LS_COMPOSE_BFF_PORT:-8080}"
        echo "INTERNAL_TOKEN=$(ls_random_hex 32)"
        # The shape of a real bot token; set the real bot's token here (BFF, notification-service
        # and payment-service).
        echo "BOT_TOKEN=${BOT_TOKEN:-$((RANDOM * 32768 + RANDOM)):$(ls_random_hex 17)}"
        echo "AUTH_DATA_KEY=$(ls_random_hex 32)"
        echo "ADMIN_TELEGRAM_IDS=$admins"
        echo "# https://api.telegram.org to send notifications and take payments; empty: notifications"
        echo "# are only stored and checkouts answer 503"
        echo "TELEGRAM_API_URL="
        echo "# the secret_token to give setWebhook for https://<host>/telegram/webhook; empty: webhook off"
        echo "TELEGRAM_WEBHOOK_SECRET=$(ls_random_hex 32)"
        echo "LOG_LEVEL=info"
        echo "# worker threads per daemon (0: one per core)"
        echo "THREADS=0"
        echo "PG_POOL_SIZE=5"
        for db in $LS_COMPOSE_DBS; do
            echo "${db^^}_DB_PASSWORD=$(ls_random_hex 24)"
        done
    } >"$tmp"
    chmod 600 "$tmp"
    mv "$tmp" "$LS_COMPOSE_ENV"
}

# ls_compose_env_complete: adds to an existing .env what it lacks of what ls_compose_write_env
# writes (a .env from before a service was added: that database's password; the webhook secret),
# fresh, keeping every value it has; prints the keys it added. Refuses (status 1, saying why) to
# invent the password of a database whose volume exists: the role in it has another one.
ls_compose_env_complete() {
    local db key add=()
    for db in $LS_COMPOSE_DBS; do
        key="${db^^}_DB_PASSWORD"
        grep -q "^$key=" "$LS_COMPOSE_ENV" && continue
        if [[ -n $(docker volume ls -q --filter "label=com.docker.compose.project=$LS_COMPOSE_PROJECT" \
            --filter "label=com.docker.compose.volume=db-$db") ]]; then
            ls_say "$LS_COMPOSE_ENV has no $key, but the volume of db-$db exists: put its password back"
            return 1
        fi
        add+=("$key=$(ls_random_hex 24)")
    done
    grep -q '^TELEGRAM_WEBHOOK_SECRET=' "$LS_COMPOSE_ENV" || add+=("TELEGRAM_WEBHOOK_SECRET=$(ls_random_hex 32)")
    [[ ${#add[@]} -gt 0 ]] || return 0
    # A file edited by hand may end without a newline.
    [[ -z $(tail -c 1 "$LS_COMPOSE_ENV") ]] || echo >>"$LS_COMPOSE_ENV"
    printf '%s\n' "${add[@]}" >>"$LS_COMPOSE_ENV"
    printf '%s\n' "${add[@]%%=*}"
}

# The project's containers, one id a line.
ls_compose_containers() { ls_compose ps -q 2>/dev/null; }

# The project's named volumes (the databases' data).
ls_compose_volumes() {
    docker volume ls -q --filter "label=com.docker.compose.project=$LS_COMPOSE_PROJECT"
}

# ls_compose_wait_healthy SECONDS: 0 once every container of the project is healthy; on a
# container that stopped, or after SECONDS, prints what is not healthy (and its last log lines)
# and returns 1.
ls_compose_wait_healthy() {
    local limit=$1 start=$SECONDS ids id state bad
    while true; do
        mapfile -t ids < <(ls_compose_containers)
        bad=()
        for id in "${ids[@]}"; do
            state=$(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id" 2>/dev/null) ||
                state="$id gone gone"
            [[ $state == *" running healthy" ]] || bad+=("$state")
        done
        [[ ${#ids[@]} -gt 0 && ${#bad[@]} -eq 0 ]] && return 0
        local b stopped=0
        for b in "${bad[@]}"; do [[ $b == *" exited "* || $b == *" dead "* || $b == *" gone "* ]] && stopped=1; done
        if [[ $stopped -eq 1 ]] || ((SECONDS - start >= limit)); then
            ls_say "not healthy after $((SECONDS - start)) s: ${bad[*]:-no containers}"
            for b in "${bad[@]}"; do
                ls_say "---- ${b%% *}: its last log lines"
                docker logs --tail 15 "${b%% *}" 2>&1 | sed 's/^/    /' >&2
            done
            return 1
        fi
        sleep 1
    done
}

# ls_compose_url SERVICE: http://IP:PORT of SERVICE's container on the project's network, which
# this machine reaches directly (Docker on Linux); fails when the service does not run.
ls_compose_url() {
    local id ip
    id=$(ls_compose ps -q "$1" 2>/dev/null) && [[ -n $id ]] || return 1
    ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$id" 2>/dev/null | awk '{print $1}')
    [[ -n $ip ]] || return 1
    printf 'http://%s:%s\n' "$ip" "${LS_COMPOSE_PORTS[$1]}"
}

# ls_compose_bff_url: the BFF as published on this machine.
ls_compose_bff_url() {
    printf 'http://127.0.0.1:%s\n' "${LS_COMPOSE_BFF_PORT:-$(ls_compose_env_get LS_COMPOSE_BFF_PORT)}"
}

# ls_compose_tma_sign ARGS...: tma-sign from the BFF's image, with the .env's BOT_TOKEN (passed in
# the environment, never on a command line).
ls_compose_tma_sign() {
    BOT_TOKEN=$(ls_compose_env_get BOT_TOKEN) docker run --rm -e BOT_TOKEN --network none \
        --entrypoint /usr/local/bin/tma-sign ls/bff:0.1.0 "$@"
}

# Exports a placeholder for every setting the compose file requires, for commands that need none of
# them (down, when .env is gone).
ls_compose_placeholder_env() {
    local k
    for k in INTERNAL_TOKEN BOT_TOKEN AUTH_DATA_KEY; do export "$k=unset"; done
    for k in $LS_COMPOSE_DBS; do export "${k^^}_DB_PASSWORD=unset"; done
}
