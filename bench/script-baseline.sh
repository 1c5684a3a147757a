#!/usr/bin/env bash
# The baseline Berth is compared with: one customer's WordPress site made by hand with the
# docker CLI, one command after the other, the way a hosting provider's shell script does it.
# It makes the same Docker objects Berth makes for a new tenant's first site:
#
#   network (explicit subnet) -> db volume -> mariadb container -> wait for the database ->
#   database + user (docker exec) -> site volume -> read-only WordPress container
#   (tmpfs paths, --link db:mysql, -p 127.0.0.1:PORT:80, restart policy) -> wait for HTTP
#
#   bench/script-baseline.sh NAME PORT SUBNET        e.g. r1 32001 10.91.1.0/24
#   bench/script-baseline.sh --cleanup               removes every object it ever made
#
# Images: BENCH_WP_IMAGE (berth/stub-wordpress:latest), BENCH_DB_IMAGE (berth/mariadb:10.11).
# Every object is named bsl_NAME_* and labelled berth-bench=script-baseline.
# Polls like Berth does: the database every 0.3 s, HTTP every 0.25 s.
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

p=bsl_$name
root_pw=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
site_pw=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
deadline=$((SECONDS + timeout))

docker network create --driver bridge --subnet "$subnet" --label "$LABEL" "${p}_net" >/dev/null
docker volume create --label "$LABEL" "${p}_db" >/dev/null
docker run -d --name "${p}_db" --label "$LABEL" --network "${p}_net" --restart unless-stopped \
  -e "MARIADB_ROOT_PASSWORD=$root_pw" -v "${p}_db:/var/lib/mysql" "$db_image" >/dev/null

sql() { docker exec -e "MYSQL_PWD=$root_pw" "${p}_db" mariadb -uroot -h127.0.0.1 --protocol=tcp --batch -e "$1"; }
until sql 'SELECT 1' >/dev/null 2>&1; do
  [ "$SECONDS" -lt "$deadline" ] || { echo "database did not become ready" >&2; exit 1; }
  sleep 0.3
done
sql "CREATE DATABASE IF NOT EXISTS wp CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'wp'@'%' IDENTIFIED BY '$site_pw';
GRANT ALL PRIVILEGES ON wp.* TO 'wp'@'%';
FLUSH PRIVILEGES" >/dev/null

docker volume create --label "$LABEL" "${p}_site" >/dev/null
docker run -d --name "${p}_wp" --label "$LABEL" --network "${p}_net" --read-only \
  --tmpfs /run/apache2:rw,noexec,nosuid,size=64m --tmpfs /run/lock/apache2:rw,noexec,nosuid,size=64m \
  --tmpfs /tmp:rw,noexec,nosuid,size=64m \
  --link "${p}_db:mysql" -p "127.0.0.1:$port:80" --restart unless-stopped \
  -v "${p}_site:/var/www/html" \
  -e WORDPRESS_DB_HOST=mysql -e WORDPRESS_DB_USER=wp -e "WORDPRESS_DB_PASSWORD=$site_pw" -e WORDPRESS_DB_NAME=wp \
  "$wp_image" >/dev/null

# any answer below 500 counts, as for Berth
until code=$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$port/") && [ "$code" -ge 100 ] && [ "$code" -lt 500 ]; do
  [ "$SECONDS" -lt "$deadline" ] || { echo "site did not answer HTTP" >&2; exit 1; }
  sleep 0.25
done
