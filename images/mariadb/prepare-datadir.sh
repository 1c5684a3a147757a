#!/bin/bash
# Run once, at image build: initialises a data directory as a new server's first start
# would (system tables, no test database, no anonymous users, the healthcheck user), with
# root@localhost reachable only through the socket by the OS root, root@% locked, and
# stores it as a sparse tar. A new server's entrypoint unpacks it into its empty volume
# (about 7 MB written, most of the 96 MB redo log being a hole) and sets its own root
# password through --init-file, so no server runs mariadb-install-db and a temporary
# server on its first start. Nothing in it is secret: every server gets its own password.
set -euxo pipefail
out=$1
tpl=$(mktemp -d)
sock=/run/mysqld/prepare.sock
chown mysql:mysql "$tpl"
mariadb-install-db --datadir="$tpl" --user=mysql --rpm --auth-root-authentication-method=normal \
  --skip-test-db --skip-log-bin --expire-logs-days=0 --default-time-zone=SYSTEM \
  --loose-innodb_buffer_pool_load_at_startup=0 --loose-innodb_buffer_pool_dump_at_shutdown=0 >/dev/null
mariadbd --user=mysql --datadir="$tpl" --skip-networking --skip-log-bin --socket="$sock" \
  --loose-innodb_buffer_pool_load_at_startup=0 --loose-innodb_buffer_pool_dump_at_shutdown=0 &
pid=$!
for _ in $(seq 1 300); do
  mariadb --protocol=socket --socket="$sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
  kill -0 "$pid"
  sleep 0.1
done
mariadb --protocol=socket --socket="$sock" -uroot --database=mysql --binary-mode <<'SQL'
SET @@SESSION.SQL_LOG_BIN=0;
DELETE FROM mysql.global_priv WHERE User='';
DROP USER IF EXISTS root@'127.0.0.1', root@'::1';
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\'', @@hostname, '\'');
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket;
-- the network root, locked and with no usable password until a server's first start sets
-- one (the init file's user may not grant PROXY, so that grant is made here)
CREATE USER 'root'@'%' IDENTIFIED VIA mysql_native_password USING 'invalid' ACCOUNT LOCK;
GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
GRANT PROXY ON ''@'%' TO 'root'@'%' WITH GRANT OPTION;
CREATE USER 'healthcheck'@'127.0.0.1', 'healthcheck'@'::1', 'healthcheck'@'localhost';
FLUSH PRIVILEGES;
SQL
mariadb-admin --protocol=socket --socket="$sock" -uroot shutdown
wait "$pid"
# recreated at every start; the marker says the root password is still to be set
rm -f "$tpl/ibtmp1"
install -o mysql -g mysql -m 600 /dev/null "$tpl/berth-first-start"
mkdir -p "$(dirname "$out")"
# The redo log is mostly zeros: copied as holes (tar looks for holes only in files that
# have some), stored and later unpacked as holes.
cp -a --sparse=always "$tpl" "$tpl.sparse"
tar --sparse -C "$tpl.sparse" -cf "$out" .
rm -rf "$tpl" "$tpl.sparse"
ls -l "$out"
