#!/usr/bin/env bash
# Make PostgreSQL, Redis, Docker Engine and the edge (Caddy) available on this (Debian 12)
# machine and print `export` lines for DATABASE_URL, REDIS_URL, DOCKER_HOST and
# BERTH_EDGE_ADMIN_URL on stdout, so that
#
#     eval "$(scripts/services.sh)"
#
# sets them in the caller. Progress goes to stderr, prefixed with [berth].
#
# A service whose variable is already set in the environment is used as given and
# nothing is installed or started for it. Optional arguments restrict the work to some
# services: scripts/services.sh docker | postgres | redis | edge | backup (any combination).
# The edge is started at BERTH_EDGE_ADMIN_URL (default http://127.0.0.1:2019) when nothing
# answers there, with its data (its internal CA, certificates) in BERTH_EDGE_DATA_DIR;
# BERTH_EDGE=none skips it. `backup` installs restic, which Berth runs for backups.
# `prometheus` (not part of the default set) installs Prometheus and promtool, which the
# metrics tests run; nothing is started for it.
#
# Idempotent: a second run finds everything running and returns in well under a second.
# Needs root for installing and starting (it is meant for CI machines and dev boxes).
set -euo pipefail

log() { echo "[berth] $*" >&2; }
warn() { echo "[berth] WARNING: $*" >&2; }
die() { echo "[berth] ERROR: $*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
exec </dev/null

PG_URL_DEFAULT="postgresql://berth:berth@127.0.0.1:5432/berth"
REDIS_URL_DEFAULT="redis://127.0.0.1:6379"
DOCKER_HOST_DEFAULT="unix:///var/run/docker.sock"
DOCKER_POOL_SIZE=24 # prefix length of each automatically assigned bridge network

want_pg=0 want_redis=0 want_docker=0 want_edge=0 want_backup=0 want_prometheus=0
if [ $# -eq 0 ]; then
  want_pg=1 want_redis=1 want_docker=1 want_edge=1 want_backup=1
fi
for arg in "$@"; do
  case "$arg" in
    postgres | postgresql | pg | db) want_pg=1 ;;
    redis) want_redis=1 ;;
    docker) want_docker=1 ;;
    edge | caddy) want_edge=1 ;;
    backup | restic) want_backup=1 ;;
    prometheus | promtool) want_prometheus=1 ;;
    all) want_pg=1 want_redis=1 want_docker=1 want_edge=1 want_backup=1 ;;
    -h | --help)
      sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 0
      ;;
    *) die "unknown service '$arg' (expected: postgres, redis, docker, edge, backup, prometheus, all)" ;;
  esac
done

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# --- apt ------------------------------------------------------------------------------
apt_updated=0
pkg_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}
apt_install() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq >&2
    apt_updated=1
  fi
  log "apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >&2
}

wait_until() { # wait_until SECONDS DESCRIPTION CMD...
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$what did not become ready within ${secs}s"
}

exports=()
# export_line NAME VALUE: an `export` line that eval gives back VALUE exactly, whatever it holds
# (quotes, spaces, $(...)); printf %q quotes for bash, which every caller runs.
export_line() { exports+=("$(printf 'export %s=%q' "$1" "$2")"); }

# --- PostgreSQL -----------------------------------------------------------------------
setup_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    log "postgres: using DATABASE_URL from the environment"
    export_line DATABASE_URL "${DATABASE_URL}"
    return
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
  fi
  local ver
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  [ -n "$ver" ] || die "postgres: no server version found under /usr/lib/postgresql"
  if [ ! -f "/etc/postgresql/$ver/main/postgresql.conf" ]; then
    log "postgres: creating cluster $ver/main"
    as_root pg_createcluster "$ver" main >&2
  fi
  if pg_isready -q -h 127.0.0.1 -p 5432; then
    log "postgres: $ver/main already running"
  else
    log "postgres: starting cluster $ver/main"
    as_root pg_ctlcluster "$ver" main start >&2 2>&1 || pg_isready -q -h 127.0.0.1 -p 5432 ||
      die "postgres: pg_ctlcluster $ver main start failed"
    wait_until 30 "postgres" pg_isready -q -h 127.0.0.1 -p 5432
  fi
  local psql=(as_root runuser -u postgres -- env -C / psql -X -q -v ON_ERROR_STOP=1 -d postgres -tA)
  if [ "$("${psql[@]}" -c "select 1 from pg_roles where rolname='berth'")" != "1" ]; then
    log "postgres: creating role berth"
    "${psql[@]}" -c "create role berth login password 'berth' createdb"
  else
    "${psql[@]}" -c "alter role berth login password 'berth' createdb"
  fi
  if [ "$("${psql[@]}" -c "select 1 from pg_database where datname='berth'")" != "1" ]; then
    log "postgres: creating database berth"
    "${psql[@]}" -c "create database berth owner berth"
  fi
  log "postgres: ready ($PG_URL_DEFAULT)"
  export_line DATABASE_URL "${PG_URL_DEFAULT}"
}

# --- Redis ----------------------------------------------------------------------------
setup_redis() {
  if [ -n "${REDIS_URL:-}" ]; then
    log "redis: using REDIS_URL from the environment"
    export_line REDIS_URL "${REDIS_URL}"
    return
  fi
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    apt_install redis-server redis-tools
  fi
  if [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null || true)" = "PONG" ]; then
    log "redis: already running"
  else
    log "redis: starting redis-server on 127.0.0.1:6379"
    as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --logfile /var/log/redis-berth.log >&2
    wait_until 20 "redis" sh -c '[ "$(redis-cli -h 127.0.0.1 -p 6379 ping)" = PONG ]'
  fi
  log "redis: ready ($REDIS_URL_DEFAULT)"
  export_line REDIS_URL "${REDIS_URL_DEFAULT}"
}

# --- Docker ---------------------------------------------------------------------------
ip2int() {
  local IFS=.
  # shellcheck disable=SC2086
  set -- $1
  echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4))
}
# cidr_overlap A/a B/b: true when the two IPv4 ranges intersect
cidr_overlap() {
  local a=${1%/*} al=${1#*/} b=${2%/*} bl=${2#*/} ai bi m
  [ "$al" = "$1" ] && al=32
  [ "$bl" = "$2" ] && bl=32
  ai=$(ip2int "$a")
  bi=$(ip2int "$b")
  m=$((al < bl ? al : bl))
  local mask=$(((0xFFFFFFFF << (32 - m)) & 0xFFFFFFFF))
  [ $((ai & mask)) -eq $((bi & mask)) ]
}
host_routes() {
  {
    ip -4 route show table all 2>/dev/null | awk '{print $1}'
    ip -4 -o addr show 2>/dev/null | awk '{print $4}'
  } | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(/[0-9]+)?$' | grep -v -E '^(0\.0\.0\.0|127\.)' || true
}
pick_pool_base() {
  # Candidates from the private ranges, /14 each: 1024 networks of /24.
  local cand r clash routes
  routes=$(host_routes)
  for cand in 10.200.0.0/14 10.216.0.0/14 10.160.0.0/14 10.96.0.0/14 172.24.0.0/14 100.80.0.0/14; do
    clash=0
    for r in $routes; do
      # docker's own bridges live inside the pool we configured earlier: not a clash
      if cidr_overlap "$cand" "$r"; then clash=1 && break; fi
    done
    [ "$clash" -eq 0 ] && echo "$cand" && return 0
  done
  return 1
}

DAEMON_JSON=/etc/docker/daemon.json
pools_changed=0
configure_docker_pools() { # sets pools_changed=1 when it wrote the file
  if [ -f "$DAEMON_JSON" ] && grep -q '"default-address-pools"' "$DAEMON_JSON"; then
    return 0
  fi
  local base
  if ! command -v ip >/dev/null 2>&1; then apt_install iproute2; fi
  base=$(pick_pool_base) || {
    warn "docker: every candidate address pool collides with a host route; leaving Docker's defaults (about 30 networks)"
    return 0
  }
  as_root mkdir -p /etc/docker
  local pool="[{\"base\": \"$base\", \"size\": $DOCKER_POOL_SIZE}]"
  if [ -s "$DAEMON_JSON" ] && [ "$(tr -d ' \t\r\n' <"$DAEMON_JSON")" != "{}" ]; then
    # merge into the existing settings
    if command -v node >/dev/null 2>&1; then
      as_root node -e '
        const fs = require("fs"); const f = process.argv[1];
        const j = JSON.parse(fs.readFileSync(f, "utf8"));
        j["default-address-pools"] = JSON.parse(process.argv[2]);
        fs.writeFileSync(f, JSON.stringify(j, null, 2) + "\n");' "$DAEMON_JSON" "$pool"
    elif command -v python3 >/dev/null 2>&1; then
      as_root python3 -c '
import json, sys
f = sys.argv[1]; j = json.load(open(f))
j["default-address-pools"] = json.loads(sys.argv[2])
open(f, "w").write(json.dumps(j, indent=2) + "\n")' "$DAEMON_JSON" "$pool"
    else
      warn "docker: cannot merge default-address-pools into existing $DAEMON_JSON (no node/python3)"
      return 0
    fi
  else
    printf '{\n  "default-address-pools": %s\n}\n' "$pool" | as_root tee "$DAEMON_JSON" >/dev/null
  fi
  log "docker: wrote default-address-pools $base (/$DOCKER_POOL_SIZE networks) to $DAEMON_JSON"
  pools_changed=1
}

# true when the running dockerd does not use the pool written in daemon.json
dockerd_older_than_config() {
  local pid start cfg want have
  [ -f "$DAEMON_JSON" ] || return 1
  want=$(grep -o '"base": *"[0-9./]*"' "$DAEMON_JSON" | head -n1 | grep -o '[0-9][0-9./]*' || true)
  [ -n "$want" ] || return 1
  if have=$(docker info --format '{{range .DefaultAddressPools}}{{.Base}} {{end}}' 2>/dev/null); then
    case " $have " in *" $want "*) return 1 ;; *) return 0 ;; esac
  fi
  # older clients: compare the daemon's start time with the file's
  pid=$(pgrep -o -x dockerd 2>/dev/null) || return 1
  start=$(date -d "$(ps -o lstart= -p "$pid")" +%s 2>/dev/null) || return 1
  cfg=$(stat -c %Y "$DAEMON_JSON" 2>/dev/null) || return 1
  [ "$cfg" -gt "$start" ]
}

setup_docker() {
  if [ -n "${DOCKER_HOST:-}" ]; then
    log "docker: using DOCKER_HOST from the environment ($DOCKER_HOST)"
    export_line DOCKER_HOST "${DOCKER_HOST}"
    return
  fi
  export DOCKER_HOST="$DOCKER_HOST_DEFAULT"
  # Write the pool config before installing, in case the package starts the daemon.
  configure_docker_pools
  if ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io
  fi
  if ! command -v docker >/dev/null 2>&1; then
    apt_install docker.io
  fi
  if docker info >/dev/null 2>&1; then
    if [ "$pools_changed" -eq 1 ] || dockerd_older_than_config; then
      warn "docker: dockerd is running but was started before $DAEMON_JSON got its current content"
      warn "docker: (default-address-pools); it is left running as is, so it may only have ~30"
      warn "docker: automatic bridge networks: restart dockerd yourself to apply the pool"
    fi
    log "docker: engine already running"
  else
    if pgrep -x dockerd >/dev/null 2>&1; then
      log "docker: dockerd process found, waiting for it to answer"
    else
      log "docker: starting dockerd (log: /var/log/dockerd.log)"
      as_root sh -c 'setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &'
    fi
    wait_until 60 "dockerd (see /var/log/dockerd.log)" docker info
  fi
  log "docker: ready ($(docker version --format 'engine {{.Server.Version}}, API {{.Server.APIVersion}}' 2>/dev/null || echo '?'))"
  export_line DOCKER_HOST "${DOCKER_HOST}"
}

# --- The edge (Caddy) ------------------------------------------------------------------
# Berth loads the whole configuration through the admin API; Caddy starts with only the
# admin API (no autosave: Berth's database is the source of truth, and it loads the routes
# again within seconds of a restart).
setup_edge() {
  if [ "${BERTH_EDGE:-caddy}" = "none" ]; then
    log "edge: BERTH_EDGE=none, not started"
    return
  fi
  local url="${BERTH_EDGE_ADMIN_URL:-http://127.0.0.1:2019}" listen dir
  command -v curl >/dev/null 2>&1 || apt_install curl
  listen="${url#*://}"
  listen="${listen%%/*}"
  if curl -sf -o /dev/null --max-time 2 "$url/config/"; then
    log "edge: Caddy answers at $url"
    export_line BERTH_EDGE_ADMIN_URL "$url"
    return
  fi
  case "$listen" in
    127.* | localhost:*) ;;
    *) die "edge: nothing answers at BERTH_EDGE_ADMIN_URL=$url, and only a local edge can be started here" ;;
  esac
  command -v caddy >/dev/null 2>&1 || apt_install caddy
  dir="${BERTH_EDGE_DATA_DIR:-/var/lib/berth/edge-${listen##*:}}"
  as_root mkdir -p "$dir/home" "$dir/data" "$dir/config"
  printf '{"admin":{"listen":"%s","config":{"persist":false}},"logging":{"logs":{"default":{"level":"WARN"}}}}\n' "$listen" |
    as_root tee "$dir/boot.json" >/dev/null
  log "edge: starting Caddy $(caddy version 2>/dev/null | cut -d' ' -f1) with its admin API at $url (data: $dir, log: $dir/caddy.log)"
  # From /, so that no Caddyfile in the current directory is picked up.
  as_root env -C / HOME="$dir/home" XDG_DATA_HOME="$dir/data" XDG_CONFIG_HOME="$dir/config" \
    setsid caddy run --config "$dir/boot.json" --pidfile "$dir/caddy.pid" >>"$dir/caddy.log" 2>&1 </dev/null &
  wait_until 30 "the edge (see $dir/caddy.log)" curl -sf -o /dev/null --max-time 2 "$url/config/"
  log "edge: ready ($url)"
  export_line BERTH_EDGE_ADMIN_URL "$url"
}

# --- Backups ---------------------------------------------------------------------------
# restic, which Berth runs for every backup and restore; Berth creates its repository
# (BERTH_BACKUP_REPOSITORY) the first time it needs it.
setup_backup() {
  command -v restic >/dev/null 2>&1 || apt_install restic
  log "backup: $(restic version 2>/dev/null | cut -d' ' -f1-2) ready"
}

# --- Prometheus ------------------------------------------------------------------------
# For the metrics tests: promtool checks the exposition and the alert rules, and a
# Prometheus the test starts itself scrapes a live Berth. The package's own service is
# not started (no systemd here; policy-rc.d keeps invoke-rc.d from starting it).
setup_prometheus() {
  if ! command -v promtool >/dev/null 2>&1; then
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
      as_root chmod +x "$policy"
      created=1
      # Removed however the install ends, so later installs on this machine start their services.
      trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt_install prometheus
    if [ "$created" -eq 1 ]; then
      as_root rm -f "$policy"
      trap - EXIT
    fi
  fi
  log "prometheus: $(prometheus --version 2>/dev/null | head -1 | cut -d' ' -f1-3) and promtool ready"
}

[ "$want_docker" -eq 1 ] && setup_docker
[ "$want_pg" -eq 1 ] && setup_postgres
[ "$want_redis" -eq 1 ] && setup_redis
[ "$want_edge" -eq 1 ] && setup_edge
[ "$want_backup" -eq 1 ] && setup_backup
[ "$want_prometheus" -eq 1 ] && setup_prometheus

for line in "${exports[@]}"; do echo "$line"; done
