#!/usr/bin/env bash
# The baseline Berth is compared with: one customer's WordPress site made by hand with the
# docker CLI (and curl for the edge), one command after the other, the way a hosting
# provider's shell script does it. It does exactly the work Berth does for a new tenant's
# first site, no more and no less:
#
#   network (explicit subnet) -> database volume -> database server container -> site volume
#   -> WordPress container -> wait for the database server (its greeting over TCP, as Berth
#   waits) -> site database and user (one docker exec, Berth's SQL) -> wait for HTTP on the
#   published port -> install WordPress (one docker exec of Berth's installer) -> with an
#   edge: route the hostname through Caddy's admin API and wait until it serves the
#   installed site over HTTPS (its certificate made on the first handshake, as Berth's edge
#   does).
#
# The containers get Berth's create options: init as PID 1, read-only root, the same tmpfs
# paths, every capability dropped but the same few, no-new-privileges, the same PID, memory
# and CPU limits, no health check, labels, --link db:mysql, -p 127.0.0.1:PORT:80,
# restart policy unless-stopped. What Berth does that this does not: its database rows,
# jobs, events and locks, and the owner's email; it also does nothing of this in parallel.
#
#   bench/script-baseline.sh NAME PORT SUBNET        e.g. r1 32001 10.91.1.0/24
#   bench/script-baseline.sh --cleanup               removes every object it ever made
#
# Environment:
#   BENCH_WP_IMAGE (berth/stub-wordpress:latest), BENCH_DB_IMAGE (berth/mariadb:10.11)
#   BENCH_INSTALL_PHP  Berth's installer (INSTALL_PHP in src/sites/wordpress-install.ts); read
#                      from dist/ when unset. The stand-in image has its own berth-wp-install,
#                      which runs instead, as with Berth.
#   BENCH_TITLE        the site's title (default "Script NAME")
#   BENCH_EDGE_ADMIN   the admin API of the script's own Caddy (unset: no edge; the site's
#                      URL is then http://127.0.0.1:PORT). Its configuration must have a
#                      server "berth" whose routes end with the sites' (the bench loads
#                      Berth's edge configuration without its catch-all).
#   BENCH_EDGE_HTTPS_PORT, BENCH_EDGE_HOSTNAME, BENCH_EDGE_CA (the edge's root certificate, a file)
# Every object is named bsl_NAME_* and labelled berth-bench=script-baseline. Polls like
# Berth does: the database every 0.25 s, HTTP every 0.25 s, the edge every 0.2 s.
set -euo pipefail

LABEL=berth-bench=script-baseline

if [ "${1:-}" = --cleanup ]; then
  ids=$(docker ps -aq --filter "label=$LABEL")
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  vols=$(docker volume ls -q --filter "label=$LABEL")
  [ -z "$vols" ] || docker volume rm -f $vols >/dev/null
  nets=$(docker network ls -q --filter "label=$LABEL")
  [ -z "$nets" ] || docker network rm $nets >/dev/null
  exit 0
fi

name=${1:?NAME}
port=${2:?PORT}
subnet=${3:?SUBNET}
wp_image=${BENCH_WP_IMAGE:-berth/stub-wordpress:latest}
db_image=${BENCH_DB_IMAGE:-berth/mariadb:10.11}
timeout=${BENCH_SCRIPT_TIMEOUT:-180}
title=${BENCH_TITLE:-Script $name}
install_php=${BENCH_INSTALL_PHP:-$(node -e "process.stdout.write(require(process.argv[1]).INSTALL_PHP)" "$(cd "$(dirname "$0")/.." && pwd)/dist/sites/wordpress-install.js")}
edge=${BENCH_EDGE_ADMIN:-}

p=bsl_$name
root_pw=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
site_pw=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
admin_pw=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
deadline=$((SECONDS + timeout))
give_up() { [ "$SECONDS" -lt "$deadline" ] || { echo "$1" >&2; exit 1; }; }

# Berth's hardening (site-plan.ts: hardening(), NO_HEALTHCHECK, TMPFS_OPTIONS).
tmpfs=rw,noexec,nosuid,size=64m
common=(--label "$LABEL" --network "${p}_net" --init --read-only --cap-drop ALL
  --security-opt no-new-privileges --pids-limit 512 --no-healthcheck)

docker network create --driver bridge --subnet "$subnet" --label "$LABEL" "${p}_net" >/dev/null
docker volume create --label "$LABEL" "${p}_db" >/dev/null
docker run -d --name "${p}_db" "${common[@]}" --network-alias "${p}_db" --restart unless-stopped \
  --cap-add CHOWN --cap-add DAC_OVERRIDE --cap-add FOWNER --cap-add SETGID --cap-add SETUID --cap-add KILL \
  --memory 1024m --cpus 1 --tmpfs "/run/mysqld:$tmpfs" --tmpfs "/tmp:$tmpfs" \
  -e "MARIADB_ROOT_PASSWORD=$root_pw" -e "MYSQL_ROOT_PASSWORD=$root_pw" \
  --mount "type=volume,source=${p}_db,target=/var/lib/mysql" "$db_image" >/dev/null

docker volume create --label "$LABEL" "${p}_site" >/dev/null
docker run -d --name "${p}_wp" "${common[@]}" --restart unless-stopped \
  --cap-add CHOWN --cap-add DAC_OVERRIDE --cap-add FOWNER --cap-add SETGID --cap-add SETUID --cap-add NET_BIND_SERVICE \
  --memory 2048m --cpus 2 --tmpfs "/run/apache2:$tmpfs" --tmpfs "/run/lock/apache2:$tmpfs" --tmpfs "/tmp:$tmpfs" \
  --link "${p}_db:mysql" -p "127.0.0.1:$port:80" \
  --mount "type=volume,source=${p}_site,target=/var/www/html" \
  -e WORDPRESS_DB_HOST=mysql -e WORDPRESS_DB_USER=wp -e "WORDPRESS_DB_PASSWORD=$site_pw" -e WORDPRESS_DB_NAME=wp \
  "$wp_image" >/dev/null

# The server's greeting (protocol 10) on its address: no exec while it starts.
db_ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"${p}_net\").IPAddress}}" "${p}_db")
greets() { timeout 3 bash -c "exec 3<>/dev/tcp/$db_ip/3306 && head -c 5 <&3" 2>/dev/null | od -An -tx1 | grep -q ' 0a$'; }
until greets; do
  give_up "database did not become ready"
  sleep 0.25
done
docker exec -e "MYSQL_PWD=$root_pw" -e "BERTH_SQL=CREATE DATABASE IF NOT EXISTS \`wp\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'wp'@'%' IDENTIFIED BY '$site_pw';
ALTER USER 'wp'@'%' IDENTIFIED BY '$site_pw';
GRANT ALL PRIVILEGES ON \`wp\`.* TO 'wp'@'%';
FLUSH PRIVILEGES" "${p}_db" \
  sh -c 'c=$(command -v mariadb || command -v mysql) && exec "$c" -uroot -h127.0.0.1 --protocol=tcp --batch -e "$BERTH_SQL"' >/dev/null

# Any answer below 500 counts, as for Berth.
until code=$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$port/") && [ "$code" -ge 100 ] && [ "$code" -lt 500 ]; do
  give_up "site did not answer HTTP"
  sleep 0.25
done

if [ -n "$edge" ]; then
  host=${BENCH_EDGE_HOSTNAME:?BENCH_EDGE_HOSTNAME}
  https_port=${BENCH_EDGE_HTTPS_PORT:?BENCH_EDGE_HTTPS_PORT}
  url="https://$host:$https_port"
else
  url="http://127.0.0.1:$port"
fi
json() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }
request="{\"url\":$(json "$url"),\"title\":$(json "$title"),\"adminUser\":\"owner\",\"adminEmail\":\"owner@$name.example\",\"password\":\"$admin_pw\"}"
out=$(printf '%s' "$request" | docker exec -i -u 33:33 -e "BERTH_WP_INSTALL=$install_php" "${p}_wp" sh -c \
  'if command -v berth-wp-install >/dev/null 2>&1; then exec berth-wp-install; fi; exec php -d display_errors=stderr -r "$BERTH_WP_INSTALL"')
grep -q '^BERTH-RESULT {"fresh":true' <<<"$out" || { echo "installing WordPress failed: $out" >&2; exit 1; }

[ -n "$edge" ] || exit 0
route="{\"@id\":\"$p\",\"match\":[{\"host\":[\"$host\"]}],\"terminal\":true,\"handle\":[{\"handler\":\"reverse_proxy\",\"upstreams\":[{\"dial\":\"127.0.0.1:$port\"}]}]}"
curl -sf -X POST -H 'Content-Type: application/json' -d "$route" "$edge/config/apps/http/servers/berth/routes" >/dev/null
# grep reads the whole page (not -q): under pipefail, curl would fail writing to a grep that left early.
until curl -sf -m 5 --cacert "${BENCH_EDGE_CA:?BENCH_EDGE_CA}" --resolve "$host:$https_port:127.0.0.1" "$url/" | grep -F "<title>$title" >/dev/null; do
  give_up "the edge did not serve $host"
  sleep 0.2
done
