# shellcheck shell=bash
# Sourced by scripts/up.sh from the project root: settles the keys Berth runs with.
#
#   1. The environment wins: a variable the operator set is kept as it is.
#   2. .berth/env (local state, mode 600, never committed) fills in only what is unset.
#   3. BERTH_ADMIN_KEY and BERTH_ENCRYPTION_KEY found in neither are generated once and added
#      to .berth/env; berth_announce_admin_key (call it last, so that it is not buried under
#      the set-up's output) prints the admin key on stdout in that run only.
#
# Progress goes to stderr, prefixed with [berth]; keys are never logged.
berth_settle_env() {
  local file=.berth/env line name value from_file=() generated=()
  if [ -f "$file" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      case "$line" in '' | '#'*) continue ;; esac
      line=${line#export }
      name=${line%%=*}
      if [[ ! $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ "$name" = "$line" ]; then
        echo "[berth] $file: ignoring a line that is not NAME=value" >&2
        continue
      fi
      if [ -n "${!name:-}" ]; then
        # The file is shell (it used to be sourced): read its value in a subshell, only to compare.
        value=$(eval "$line" && printf '%s' "${!name}") || value=
        [ "$value" = "${!name}" ] || echo "[berth] $name: using the environment's value, not the one in $file" >&2
        continue
      fi
      eval "export $line"
      from_file+=("$name")
    done <"$file"
  fi
  [ ${#from_file[@]} -eq 0 ] || echo "[berth] from $file: ${from_file[*]}" >&2

  if [ -z "${BERTH_ADMIN_KEY:-}" ]; then
    BERTH_ADMIN_KEY="berth_$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
    generated+=(BERTH_ADMIN_KEY)
  fi
  if [ -z "${BERTH_ENCRYPTION_KEY:-}" ]; then
    BERTH_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64 -w0)"
    generated+=(BERTH_ENCRYPTION_KEY)
  fi
  export BERTH_ADMIN_KEY BERTH_ENCRYPTION_KEY
  [ ${#generated[@]} -gt 0 ] || return 0

  mkdir -p "${file%/*}" && chmod 700 "${file%/*}"
  (
    umask 077
    if [ -s "$file" ] && [ -n "$(tail -c 1 "$file")" ]; then echo >>"$file"; fi
    for name in "${generated[@]}"; do printf '%s=%s\n' "$name" "${!name}"; done >>"$file"
  )
  chmod 600 "$file"
  echo "[berth] generated ${generated[*]} into $file (kept for the next starts)" >&2
  case " ${generated[*]} " in *" BERTH_ADMIN_KEY "*) berth_admin_key_generated=1 ;; esac
}
berth_announce_admin_key() {
  [ -z "${berth_admin_key_generated:-}" ] || echo "Admin API key: $BERTH_ADMIN_KEY (shown this once; kept in .berth/env)"
}
berth_admin_key_generated=
berth_settle_env
unset -f berth_settle_env
