#!/bin/bash
# Entry point of berth/wordpress, after the official `wordpress:apache` image:
# on first start, copies WordPress into the (empty) volume /var/www/html and writes a
# wp-config.php that reads WORDPRESS_DB_HOST, WORDPRESS_DB_USER, WORDPRESS_DB_PASSWORD,
# WORDPRESS_DB_NAME, WORDPRESS_TABLE_PREFIX, WORDPRESS_DEBUG, WORDPRESS_CONFIG_EXTRA,
# WORDPRESS_AUTH_KEY... (and *_FILE variants) with getenv() at request time.
# Writes nothing outside /var/www/html (the root filesystem may be read-only).
set -Eeuo pipefail

if [[ "${1:-}" == apache2* ]] || [ "${1:-}" = php-fpm ]; then
  user=www-data group=www-data
  if [ "$(id -u)" != 0 ]; then
    user=$(id -u) group=$(id -g)
  fi
  cd /var/www/html

  if [ ! -e wp-includes/version.php ]; then
    start=$(date +%s%N)
    if [ -n "$(find . -mindepth 1 -maxdepth 1 -print -quit)" ]; then
      echo >&2 "WARNING: $PWD is not empty! (copying WordPress over it anyway)"
    fi
    # Like the official image: core files are (over)written, while .htaccess and the
    # plugins/themes already in wp-content are kept. version.php comes last, so that an
    # interrupted copy is redone at the next start.
    excludes=(--exclude=./wp-includes/version.php)
    src=/usr/src/wordpress
    for p in "$src/.htaccess" "$src"/wp-content/plugins/* "$src"/wp-content/themes/* "$src/wp-content/languages" "$src/wp-content/uploads"; do
      p=${p#/usr/src/wordpress/}
      if [ -e "/var/www/html/$p" ] || [ -L "/var/www/html/$p" ]; then excludes+=("--exclude=./$p"); fi
    done
    owner=()
    if [ "$(id -u)" = 0 ]; then owner=(--owner "$user" --group "$group"); fi
    tar -C /usr/src/wordpress "${owner[@]}" "${excludes[@]}" -cf - . | tar -C /var/www/html -xf -
    cp -p /usr/src/wordpress/wp-includes/version.php wp-includes/version.php.tmp
    mv -f wp-includes/version.php.tmp wp-includes/version.php
    echo >&2 "WordPress $(sed -n "s/^\$wp_version = '\(.*\)';/\1/p" wp-includes/version.php) has been copied to $PWD ($((($(date +%s%N) - start) / 1000000)) ms)"
  fi

  if [ ! -s wp-config.php ]; then
    tmp=wp-config.php.tmp.$$
    cp /usr/src/wordpress/wp-config-docker.php "$tmp"
    # unique default keys and salts for this site (WORDPRESS_AUTH_KEY etc. still win)
    for key in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
      rand=$(head -c 48 /dev/urandom | sha256sum | cut -d' ' -f1)
      sed -i "s/('WORDPRESS_$key', *'put your unique phrase here')/('WORDPRESS_$key', '$rand')/" "$tmp"
    done
    if [ "$(id -u)" = 0 ]; then
      chown "$user:$group" "$tmp"
    fi
    chmod 640 "$tmp"
    mv -f "$tmp" wp-config.php
    echo >&2 "wrote $PWD/wp-config.php (settings from WORDPRESS_* environment variables)"
  fi
fi

exec "$@"
