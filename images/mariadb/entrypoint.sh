#!/bin/bash
# Entry point of berth/mariadb, after the official `mariadb` image's contract:
#   MARIADB_ROOT_PASSWORD (or MYSQL_ROOT_PASSWORD, or *_FILE variants), or
#   MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1, or MARIADB_RANDOM_ROOT_PASSWORD=1
#   MARIADB_ROOT_HOST (default %), MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD
#   (MYSQL_* aliases too), /docker-entrypoint-initdb.d/*.sql|*.sql.gz|*.sh
# On an empty /var/lib/mysql it unpacks the data directory prepared at image build and
# has the server itself set the root password (and database, user) on its first start,
# through --init-file, before it accepts any connection. With /docker-entrypoint-initdb.d
# scripts (or no prepared directory) it initialises the data directory the official way,
# with a temporary server that does not listen on the network. Then it execs mariadbd on
# 0.0.0.0:3306 as mysql.
set -eo pipefail
shopt -s nullglob

log() { printf '%s [Note] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2; }
err() { printf '%s [ERROR] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2; exit 1; }

# file_env VAR [DEFAULT]: VAR, VAR_FILE, then the MYSQL_ alias of a MARIADB_ variable
file_env() {
  # (one local each: the words of one `local` are all expanded before any is assigned)
  local var=$1 def=${2:-} alias=${1/#MARIADB_/MYSQL_}
  local val=$def
  if [ -n "${!var:-}" ] && [ -n "$(eval echo "\${${var}_FILE:-}")" ]; then
    err "both $var and ${var}_FILE are set (but are exclusive)"
  fi
  local f="${var}_FILE" af="${alias}_FILE"
  if [ -n "${!var:-}" ]; then val=${!var}
  elif [ -n "${!f:-}" ]; then val=$(<"${!f}")
  elif [ -n "${!alias:-}" ]; then val=${!alias}
  elif [ -n "${!af:-}" ]; then val=$(<"${!af}")
  fi
  export "$var"="$val"
  unset "$f"
}

sql_escape() { # for use inside '...'
  local s=${1//\\/\\\\}
  printf '%s' "${s//\'/\\\'}"
}

if [ "${1:0:1}" = '-' ]; then
  set -- mariadbd "$@"
fi

if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then
  exec "$@"
fi

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock
if [ "$(id -u)" = 0 ]; then
  mkdir -p /run/mysqld
  chown mysql:mysql /run/mysqld
  find "$DATADIR" \! -user mysql -exec chown mysql: '{}' +
  set -- "$@" --user=mysql
fi

PREPARED=/usr/local/lib/berth/mariadb-datadir.tar
# set while the prepared directory's root password has not been set yet (it is in the tar)
PENDING=$DATADIR/berth-first-start
# set while the prepared directory is being unpacked: a start cut short unpacks it again
UNPACKING=$DATADIR/berth-unpacking
INIT_FILE=/run/mysqld/berth-init.sql
initdb_scripts=(/docker-entrypoint-initdb.d/*)

if { [ ! -d "$DATADIR/mysql" ] || [ -e "$UNPACKING" ]; } && [ -f "$PREPARED" ] && [ ${#initdb_scripts[@]} -eq 0 ]; then
  log "Unpacking the prepared data directory"
  touch "$UNPACKING"
  tar --sparse -C "$DATADIR" -xf "$PREPARED"
  rm -f "$UNPACKING"
fi

read_settings() {
  file_env MARIADB_ROOT_PASSWORD
  file_env MARIADB_ROOT_HOST '%'
  file_env MARIADB_DATABASE
  file_env MARIADB_USER
  file_env MARIADB_PASSWORD
  file_env MARIADB_ALLOW_EMPTY_ROOT_PASSWORD
  file_env MARIADB_RANDOM_ROOT_PASSWORD
  if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    err "Database is uninitialized and password option is not specified
	You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_FILE, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
  fi
  if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ] && [ -z "$MARIADB_ROOT_PASSWORD" ]; then
    # (not tr | head: head's exit would end tr with SIGPIPE, fatal under pipefail)
    MARIADB_ROOT_PASSWORD=$(head -c 1024 /dev/urandom | LC_ALL=C tr -dc '[:alnum:]')
    MARIADB_ROOT_PASSWORD=${MARIADB_ROOT_PASSWORD:0:32}
    log "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
  fi
  rootpw=$(sql_escape "$MARIADB_ROOT_PASSWORD")
  roothost=$(sql_escape "$MARIADB_ROOT_HOST")
}

# The SQL that makes a server its owner's, one statement a line (as --init-file wants);
# idempotent, so a first start cut short is done again.
owner_sql() {
  echo "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('$rootpw') OR unix_socket;"
  # the prepared root@% (locked, all privileges and PROXY) becomes the network root
  case "$MARIADB_ROOT_HOST" in
    localhost) echo "DROP USER IF EXISTS 'root'@'%';" ;;
    %) echo "ALTER USER 'root'@'%' IDENTIFIED BY '$rootpw' ACCOUNT UNLOCK;" ;;
    *)
      # (without PROXY: only the prepared root@% has it, and the init file may not grant it)
      echo "CREATE OR REPLACE USER 'root'@'$roothost' IDENTIFIED BY '$rootpw';"
      echo "GRANT ALL ON *.* TO 'root'@'$roothost' WITH GRANT OPTION;"
      echo "DROP USER IF EXISTS 'root'@'%';"
      ;;
  esac
  if [ -n "$MARIADB_DATABASE" ]; then
    echo "CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE//\`/\`\`}\`;"
  fi
  if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
    echo "CREATE OR REPLACE USER '$(sql_escape "$MARIADB_USER")'@'%' IDENTIFIED BY '$(sql_escape "$MARIADB_PASSWORD")';"
    if [ -n "$MARIADB_DATABASE" ]; then
      db=${MARIADB_DATABASE//\`/\`\`}
      echo "GRANT ALL ON \`${db//_/\\_}\`.* TO '$(sql_escape "$MARIADB_USER")'@'%';"
    fi
  fi
}

if [ -e "$PENDING" ]; then
  read_settings
  log "First start from the prepared data directory: the server sets its root password before it accepts connections"
  # Berth mounts a tmpfs on /run/mysqld (elsewhere the file is in the container's writable
  # layer); it is removed once the server answers with the password set
  (umask 077 && owner_sql >"$INIT_FILE")
  chown mysql:mysql "$INIT_FILE" 2>/dev/null || true
  set -- "$@" "--init-file=$INIT_FILE"
  # Once the server answers (it accepts no connection before the init file has run) and
  # root@localhost has the password the init file gave it, the first start is over. Waiting
  # costs no process while the server boots: the socket is looked for with a builtin and the
  # pauses are read timeouts on a pipe nobody writes to (16 servers starting at once on 2
  # cores must not be slowed by their own watchers). Started twice over so that PID 1 (the
  # container's init), not mariadbd, is its parent and reaps it.
  (
    (
      exec 9<> <(:)
      pause() { read -r -t "$1" -u 9 || :; }
      for _ in $(seq 1 1200); do
        if [ -S "$SOCKET" ] && set_up=$(mariadb --protocol=socket --socket="$SOCKET" -uroot -N -e \
          "SELECT JSON_VALUE(Priv, '\$.plugin') FROM mysql.global_priv WHERE User = 'root' AND Host = 'localhost'" 2>/dev/null); then
          if [ "$set_up" = mysql_native_password ]; then
            rm -f "$PENDING" "$INIT_FILE"
            log "Root password set; first start done"
          else
            log "ERROR: the first start's SQL did not set the root password (see the server's errors above); it runs again at the next start"
          fi
          exit 0
        fi
        pause 0.1
      done
      log "ERROR: the server did not answer within 120 s of its first start; it is done again at the next start"
    ) </dev/null &
  )
  exec "$@"
fi

if [ ! -d "$DATADIR/mysql" ]; then
  read_settings

  log "Initializing database files"
  mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal \
    --skip-test-db --skip-log-bin --expire-logs-days=0 --default-time-zone=SYSTEM \
    --loose-innodb_buffer_pool_load_at_startup=0 --loose-innodb_buffer_pool_dump_at_shutdown=0 \
    "${@:2}" >/dev/null
  log "Database files initialized"

  log "Starting temporary server"
  "$@" --skip-networking --skip-log-bin --socket="$SOCKET" --wsrep_on=OFF \
    --loose-innodb_buffer_pool_load_at_startup=0 --loose-innodb_buffer_pool_dump_at_shutdown=0 &
  pid=$!
  for _ in $(seq 1 300); do
    if mariadb --protocol=socket --socket="$SOCKET" -uroot -e 'SELECT 1' >/dev/null 2>&1; then break; fi
    kill -0 "$pid" 2>/dev/null || err "temporary server failed to start"
    sleep 0.1
  done
  mariadb --protocol=socket --socket="$SOCKET" -uroot -e 'SELECT 1' >/dev/null || err "temporary server did not answer"
  log "Temporary server started"

  sql="SET @@SESSION.SQL_LOG_BIN=0;
SET @@SESSION.SQL_MODE=REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');
DELETE FROM mysql.global_priv WHERE User='';
DROP USER IF EXISTS root@'127.0.0.1', root@'::1';
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\'', @@hostname, '\'');
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('$rootpw') OR unix_socket;
-- for the HEALTHCHECK: can connect from inside the container only, has no privileges
CREATE USER 'healthcheck'@'127.0.0.1', 'healthcheck'@'::1', 'healthcheck'@'localhost';"
  if [ "$MARIADB_ROOT_HOST" != localhost ]; then
    sql+="
CREATE USER 'root'@'$roothost' IDENTIFIED BY '$rootpw';
GRANT ALL ON *.* TO 'root'@'$roothost' WITH GRANT OPTION;
GRANT PROXY ON ''@'%' TO 'root'@'$roothost' WITH GRANT OPTION;"
  fi
  if [ -n "$MARIADB_DATABASE" ]; then
    sql+="
CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE//\`/\`\`}\`;"
  fi
  if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
    sql+="
CREATE USER '$(sql_escape "$MARIADB_USER")'@'%' IDENTIFIED BY '$(sql_escape "$MARIADB_PASSWORD")';"
    if [ -n "$MARIADB_DATABASE" ]; then
      db=${MARIADB_DATABASE//\`/\`\`}
      sql+="
GRANT ALL ON \`${db//_/\\_}\`.* TO '$(sql_escape "$MARIADB_USER")'@'%';"
    fi
  fi
  sql+="
FLUSH PRIVILEGES;"
  printf '%s\n' "$sql" | mariadb --protocol=socket --socket="$SOCKET" -uroot --database=mysql --binary-mode

  client=(mariadb --protocol=socket --socket="$SOCKET" -uroot)
  [ -n "$MARIADB_DATABASE" ] && client+=("--database=$MARIADB_DATABASE")
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) log "running $f"; . "$f" ;;
      *.sql) log "running $f"; "${client[@]}" <"$f" ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | "${client[@]}" ;;
      *) log "ignoring $f" ;;
    esac
  done

  kill "$pid"
  wait "$pid" || true
  log "Temporary server stopped"
  log "MariaDB init process done. Ready for start up."
fi

exec "$@"
