#!/bin/sh
# Entry point of berth/stub-wordpress. Works with a read-only root filesystem: it only
# writes into /var/www/html (the site volume).
set -eu

esc() { printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'; }
db_host=$(esc "${WORDPRESS_DB_HOST:-}")
db_name=$(esc "${WORDPRESS_DB_NAME:-}")

mkdir -p /var/www/html
page="<!doctype html>
<html>
<head><meta charset=\"utf-8\"><title>berth-stub-wordpress</title></head>
<body>
<h1>berth-stub-wordpress</h1>
<p>WORDPRESS_DB_HOST=$db_host</p>
<p>WORDPRESS_DB_NAME=$db_name</p>
<p>hostname=$(hostname)</p>
$(if [ -f /var/www/html/.berth-installed ]; then printf '<p>installed: %s</p>' "$(esc "$(cat /var/www/html/.berth-installed)")"; fi)
</body>
</html>"
printf '%s\n' "$page" >"/var/www/html/index.html.tmp.$$"
mv -f "/var/www/html/index.html.tmp.$$" /var/www/html/index.html
# the real image answers on /wp-login.php too; health probes may use it
cp -f /var/www/html/index.html "/var/www/html/wp-login.php.tmp.$$"
mv -f "/var/www/html/wp-login.php.tmp.$$" /var/www/html/wp-login.php
# The pages of this start are written: berth-wp-install (which Berth may run beside this
# start) waits for this mark before it adds its line, so this start never writes over it.
touch /tmp/.berth-pages-written 2>/dev/null || true

if [ "${1:-}" != httpd ]; then
  exec "$@"
fi

echo "stub wordpress listening on :80 (WORDPRESS_DB_HOST=${WORDPRESS_DB_HOST:-} WORDPRESS_DB_NAME=${WORDPRESS_DB_NAME:-})"
# httpd runs as a child so that this shell (PID 1) can act on SIGTERM: a PID 1 without
# a handler ignores it and `docker stop` would wait 10 s for the SIGKILL.
"$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 0' TERM INT
wait "$pid"
