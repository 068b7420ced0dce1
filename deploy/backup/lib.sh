# shellcheck shell=bash disable=SC2034,SC2016
# Shared by deploy/backup/backup and deploy/backup/restore: where the system's databases are and how
# PostgreSQL's own tools reach them. Source it after deploy/local/lib.sh; it only defines functions
# and BK_* variables.
#
# Two systems, one interface. bk_target_local (deploy/local/up's cluster, found through
# $LS_STATE_DIR/env) or bk_target_compose PROJECT (the db-<name> containers of a Docker Compose
# project, found by their compose labels) sets BK_MODE; then, for a service database NAME
# (auth, teachers, ...):
#   bk_dump NAME            pg_dump -Fc of NAME, as NAME's own role, on stdout
#   bk_list NAME            pg_restore --list of the dump on stdin (the same pg_restore as bk_restore)
#   bk_admin NAME DB SQL    SQL as the administrator of NAME's server, connected to database DB
#                           (unaligned tuples on stdout; stops at the first error)
#   bk_restore NAME DB      pg_restore of the dump on stdin into database DB, every object owned by
#                           NAME's role, in one transaction
#   bk_role NAME / bk_db NAME   the role and the database name of NAME
# Local: the administrator is the cluster's superuser (LS_PG_SUPERUSER in the env file), dumps use
# the service's own DATABASE_URL. Compose: the tools run inside the db-<name> container (the
# server's own binaries) as the superuser "postgres" over the container's socket (ls/postgres's
# peer authentication); the service's role and database are its POSTGRES_USER and POSTGRES_DB.

BK_NAMES=(auth teachers students groups calendar notification payment)
BK_MODE=""

bk_known() {
    local n
    for n in "${BK_NAMES[@]}"; do [[ $n == "$1" ]] && return 0; done
    return 1
}

# bk_env_get FILE KEY: a value from deploy/local/up's env file (KEY='value' lines), not executed.
bk_env_get() { sed -n "s/^$2='\\(.*\\)'\$/\\1/p" "$1" | tail -n 1; }

# ---------------------------------------------------------------- the local system

bk_target_local() {
    local root=$1
    BK_STATE=$(realpath -m "${LS_STATE_DIR:-$root/.local}")
    BK_ENV="$BK_STATE/env"
    [[ -f $BK_ENV ]] || ls_die "no $BK_ENV: is there a local system (deploy/local/up) with state in $BK_STATE?"
    [[ -r $BK_ENV ]] || ls_die "cannot read $BK_ENV (run as the user who ran deploy/local/up)"
    BK_PG_HOST=$(bk_env_get "$BK_ENV" LS_PG_HOST)
    BK_PG_PORT=$(bk_env_get "$BK_ENV" LS_PG_PORT)
    BK_PG_USER=$(bk_env_get "$BK_ENV" LS_PG_SUPERUSER)
    BK_PG_PASSWORD=$(bk_env_get "$BK_ENV" LS_PG_PASSWORD)
    [[ -n $BK_PG_HOST && -n $BK_PG_PORT && -n $BK_PG_USER && -n $BK_PG_PASSWORD ]] ||
        ls_die "$BK_ENV lacks the cluster's LS_PG_* settings"
    # The cluster's own client tools (same major version as the server).
    BK_PG_BIN=$(ls_pg_bindir) || ls_die "PostgreSQL binaries not found (install postgresql or set LS_PGBIN)"
    BK_MODE=local
}

bk_local_url() {
    local url
    url=$(bk_env_get "$BK_ENV" "${1^^}_DATABASE_URL")
    [[ -n $url ]] || ls_die "$BK_ENV has no ${1^^}_DATABASE_URL"
    printf '%s\n' "$url"
}

# ---------------------------------------------------------------- the compose system

bk_target_compose() {
    BK_PROJECT=$1
    command -v docker >/dev/null || ls_die "no docker client on the PATH"
    docker info >/dev/null 2>&1 || ls_die "no Docker daemon answers"
    BK_MODE=compose
}

# bk_container NAME: the running container of service db-NAME in the project (by compose's labels,
# so any compose version and any compose file location will do).
bk_container() {
    local ids
    ids=$(docker ps -q --filter "label=com.docker.compose.project=$BK_PROJECT" \
        --filter "label=com.docker.compose.service=db-$1" --filter status=running)
    [[ -n $ids ]] || {
        ls_say "no running container of db-$1 in compose project $BK_PROJECT"
        return 1
    }
    printf '%s\n' "${ids%%$'\n'*}"
}

# bk_in NAME [-i] SCRIPT ARGS...: a sh script inside db-NAME's container as its "postgres" user, with
# libpq's PGHOST and PGUSER set for the superuser over the container's socket (ls/postgres admits
# it there by peer authentication), ROLE and DB set from the container's POSTGRES_USER and
# POSTGRES_DB, and the server's binaries on the PATH (the image's ENV).
bk_in() {
    local name=$1 c opts=(-u postgres)
    shift
    if [[ $1 == -i ]]; then
        opts+=(-i)
        shift
    fi
    c=$(bk_container "$name") || return 1
    local script=$1
    shift
    docker exec "${opts[@]}" "$c" sh -c \
        'export PGHOST=/var/run/postgresql PGUSER=postgres; ROLE=$POSTGRES_USER; DB=${POSTGRES_DB:-$POSTGRES_USER}; '"$script" \
        sh "$@"
}

# ---------------------------------------------------------------- one interface

bk_role() {
    case $BK_MODE in
    local) printf '%s\n' "$1" ;;
    compose) bk_in "$1" 'printf "%s\n" "$ROLE"' ;;
    esac
}

bk_db() {
    case $BK_MODE in
    local) printf '%s\n' "$1" ;;
    compose) bk_in "$1" 'printf "%s\n" "$DB"' ;;
    esac
}

bk_dump() {
    case $BK_MODE in
    local) "$BK_PG_BIN/pg_dump" -Fc "$(bk_local_url "$1")" ;;
    compose) bk_in "$1" 'exec pg_dump -Fc -d "$DB"' ;;
    esac
}

bk_list() {
    case $BK_MODE in
    local) "$BK_PG_BIN/pg_restore" --list ;;
    compose) bk_in "$1" -i 'exec pg_restore --list' ;;
    esac
}

bk_admin() {
    local name=$1 db=$2 sql=$3
    case $BK_MODE in
    local)
        PGOPTIONS='-c client_min_messages=warning' PGPASSWORD=$BK_PG_PASSWORD "$BK_PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
            -h "$BK_PG_HOST" -p "$BK_PG_PORT" -U "$BK_PG_USER" -d "$db" -c "$sql"
        ;;
    compose) bk_in "$name" 'export PGOPTIONS="-c client_min_messages=warning"; exec psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"' "$db" "$sql" ;;
    esac
}

bk_restore() {
    local name=$1 db=$2 role
    role=$(bk_role "$name") || return 1
    # --no-owner --role: whoever owned the objects where the dump was taken, here the service's
    # role creates and owns them all, so the service may change them afterwards.
    local opts=(--exit-on-error --single-transaction --no-owner --no-comments --role="$role")
    case $BK_MODE in
    local)
        PGPASSWORD=$BK_PG_PASSWORD "$BK_PG_BIN/pg_restore" "${opts[@]}" \
            -h "$BK_PG_HOST" -p "$BK_PG_PORT" -U "$BK_PG_USER" -d "$db"
        ;;
    compose) bk_in "$name" -i 'db=$1; shift; exec pg_restore "$@" -d "$db"' "$db" "${opts[@]}" ;;
    esac
}

# bk_sha256 FILE: the file's lowercase hex SHA-256.
bk_sha256() { sha256sum <"$1" | cut -d' ' -f1; }
