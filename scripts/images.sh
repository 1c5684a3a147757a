#!/usr/bin/env bash
# Build Berth's local Docker images from Debian packages only (no registry needed).
#
#   scripts/images.sh [all | stub | real | IMAGE...]      (default: all)
#
#   IMAGE   busybox          -> berth/busybox:latest
#           stub-wordpress   -> berth/stub-wordpress:latest   (FROM berth/busybox)
#           debian           -> berth/debian:bookworm         (debootstrap)
#           mariadb          -> berth/mariadb:10.11           (FROM berth/debian)
#           wordpress        -> berth/wordpress:6.1           (FROM berth/debian)
#           node             -> berth/node:20                 (FROM berth/debian, this machine's Node.js)
#           postgres         -> berth/postgres:15             (FROM berth/debian)
#           redis            -> berth/redis:7                 (FROM berth/debian)
#           caddy            -> berth/caddy:2                 (FROM berth/debian)
#           swarm-node       -> berth/swarm-node:latest       (FROM berth/debian, test Swarm nodes)
#   stub    busybox + stub-wordpress (a few seconds)
#   real    debian + mariadb + wordpress (about 2 minutes the first time)
#   compose node + postgres + redis + caddy: what docker-compose.yml needs besides the real ones
#   all     everything
#
# Options: --force (rebuild even when cached), --list (print image names and exit).
#
# Each image carries the label org.berth.hash: a hash of its folder images/<name>/ and of
# its parent's folder (recursively). An image whose label matches is not rebuilt (and its
# parent is then not needed at all), so a second run with nothing changed takes a second.
# A parent is built first when a child needs building. A loaded image (docker load)
# with the right label counts as built.
# Needs a running Docker Engine (scripts/services.sh docker starts one).
set -euo pipefail

log() { echo "[berth] $*" >&2; }
die() { echo "[berth] ERROR: $*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
# the classic builder: works with every docker CLI/engine pair and never contacts a
# registry for local FROM images (BuildKit would need the buildx plugin)
export DOCKER_BUILDKIT=0
exec </dev/null

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGES_DIR="$ROOT/images"
LABEL=org.berth.hash

declare -A TAG=(
  [busybox]=berth/busybox:latest
  [stub-wordpress]=berth/stub-wordpress:latest
  [debian]=berth/debian:bookworm
  [mariadb]=berth/mariadb:10.11
  [wordpress]=berth/wordpress:6.1
  [node]=berth/node:20
  [postgres]=berth/postgres:15
  [redis]=berth/redis:7
  [caddy]=berth/caddy:2
  [swarm-node]=berth/swarm-node:latest
)
declare -A PARENT=(
  [busybox]=""
  [stub-wordpress]=busybox
  [debian]=""
  [mariadb]=debian
  [wordpress]=debian
  [node]=debian
  [postgres]=debian
  [redis]=debian
  [caddy]=debian
  [swarm-node]=debian
)
ORDER=(busybox stub-wordpress debian mariadb wordpress node postgres redis caddy swarm-node)

force=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --list)
      for n in "${ORDER[@]}"; do echo "${TAG[$n]}"; done
      exit 0
      ;;
    -h | --help)
      sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 0
      ;;
    all) targets+=("${ORDER[@]}") ;;
    stub | stubs) targets+=(busybox stub-wordpress) ;;
    real) targets+=(debian mariadb wordpress) ;;
    compose) targets+=(node postgres redis caddy) ;;
    *)
      [ -n "${TAG[$arg]+x}" ] || die "unknown image '$arg' (expected: all, stub, real, ${ORDER[*]})"
      targets+=("$arg")
      ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=("${ORDER[@]}")

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

apt_updated=0
ensure_pkg() { # ensure_pkg COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq >&2
    apt_updated=1
  fi
  log "apt-get install $2"
  as_root apt-get install -y -qq --no-install-recommends "$2" >&2
}

if ! docker info >/dev/null 2>&1; then
  log "docker engine not answering: running scripts/services.sh docker"
  eval "$("$ROOT/scripts/services.sh" docker)"
fi

# --- helpers ---------------------------------------------------------------------------
image_label() { docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true; }

content_hash() { # content_hash NAME -> hash of images/NAME/** and of its parent's recipe
  local name=$1 dir="$IMAGES_DIR/$1" parent=${PARENT[$1]}
  [ -d "$dir" ] || die "missing folder $dir"
  {
    echo "image $name"
    [ -n "$parent" ] && echo "parent $(content_hash "$parent")"
    (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    # executable bits matter (entrypoints)
    (cd "$dir" && find . -type f -perm -u+x -print | LC_ALL=C sort)
    # berth/node carries this machine's Node.js: a new one is a new image
    if [ "$name" = node ]; then node --version; sha256sum </etc/ssl/certs/ca-certificates.crt; fi
  } | sha256sum | cut -c1-16
}

# Debian mirrors from the host's apt configuration (one-line and deb822 formats)
apt_sources() { # prints "URI SUITE" lines
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } print $i, $(i + 1) }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      { uris = ""; suites = ""; types = ""; enabled = "yes"
        for (k = 1; k <= NF; k++) {
          line = $k
          if (line ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", line); uris = line }
          else if (line ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", line); suites = line }
          else if (line ~ /^Types:/) { sub(/^Types:[ \t]*/, "", line); types = line }
          else if (line ~ /^Enabled:/) { sub(/^Enabled:[ \t]*/, "", line); enabled = tolower(line) }
        }
        if (enabled != "no" && (" " types " ") ~ / deb /) {
          nu = split(uris, U, /[ \t]+/); ns = split(suites, S, /[ \t]+/)
          for (u = 1; u <= nu; u++) for (s = 1; s <= ns; s++) if (U[u] != "" && S[s] != "") print U[u], S[s]
        } }' "$f"
  done
}
debian_mirrors() { # sets MIRROR and SECURITY_MIRROR
  local src
  src=$(apt_sources)
  MIRROR=$(awk '$2 == "bookworm" || $2 == "stable" { print $1; exit }' <<<"$src")
  SECURITY_MIRROR=$(awk '$2 ~ /^(bookworm|stable)[-\/]security$/ { print $1; exit }' <<<"$src")
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  SECURITY_MIRROR=${SECURITY_MIRROR:-}
  MIRROR=${MIRROR%/}
  SECURITY_MIRROR=${SECURITY_MIRROR%/}
}

import_rootfs() { # import_rootfs DIR TAG HASH CMD-JSON
  local tarball="$1.tar"
  # via a file, so that a failed tar never becomes a (labelled, empty) image
  as_root tar --numeric-owner -C "$1" -cf "$tarball" .
  docker import \
    --change "LABEL $LABEL=$3" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "CMD $4" \
    "$tarball" "$2" >/dev/null
  as_root rm -f "$tarball"
}

# --- builders ---------------------------------------------------------------------------
build_busybox() {
  local hash=$1 tmp
  tmp=$(mktemp -d /var/tmp/berth-busybox.XXXXXX)
  as_root bash "$IMAGES_DIR/busybox/build-rootfs.sh" "$tmp/rootfs"
  import_rootfs "$tmp/rootfs" "${TAG[busybox]}" "$hash" '["sh"]'
  as_root rm -rf "$tmp"
}

build_debian() {
  local hash=$1 tmp
  ensure_pkg debootstrap debootstrap
  debian_mirrors
  log "debian: debootstrap --variant=minbase bookworm from $MIRROR${SECURITY_MIRROR:+ (security: $SECURITY_MIRROR)} (about 45 s)"
  tmp=$(mktemp -d /var/tmp/berth-debian.XXXXXX)
  # shellcheck disable=SC2064
  trap "as_root rm -rf '$tmp'" EXIT
  as_root bash "$IMAGES_DIR/debian/build-rootfs.sh" "$tmp/rootfs" "$MIRROR" "$SECURITY_MIRROR"
  import_rootfs "$tmp/rootfs" "${TAG[debian]}" "$hash" '["bash"]'
  as_root rm -rf "$tmp"
  trap - EXIT
}

build_dockerfile() { # build_dockerfile NAME HASH [CONTEXT]
  local name=$1 hash=$2 context=${3:-$IMAGES_DIR/$1} logf
  logf=$(mktemp /tmp/berth-build-$name.XXXXXX)
  if ! docker build --force-rm --label "$LABEL=$hash" -t "${TAG[$name]}" "$context" >"$logf" 2>&1; then
    tail -n 40 "$logf" >&2
    rm -f "$logf"
    die "$name: docker build failed"
  fi
  rm -f "$logf"
}

build_node() { # the files of this machine's Node.js 20 (node, npm), beside the Dockerfile
  local hash=$1 ctx node
  node=$(readlink -f "$(command -v node)") || die "node: no Node.js on this machine"
  case "$(node --version)" in v20.*) ;; *) die "node: this machine's Node.js is $(node --version), not 20" ;; esac
  ctx=$(mktemp -d /var/tmp/berth-node.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$ctx'" EXIT
  cp "$IMAGES_DIR/node/Dockerfile" "$ctx/"
  local npm_dir
  npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
  # npm's own folder where it is; node, npm and npx on the PATH (/usr/bin), as Debian lays them out
  tar -C / -cf "$ctx/nodejs.tar" "${npm_dir#/}"
  mkdir -p "$ctx/links/usr/bin"
  cp "$node" "$ctx/links/usr/bin/node"
  ln -s "$npm_dir/bin/npm-cli.js" "$ctx/links/usr/bin/npm"
  ln -s "$npm_dir/bin/npx-cli.js" "$ctx/links/usr/bin/npx"
  tar -C "$ctx/links" -rf "$ctx/nodejs.tar" usr/bin/node usr/bin/npm usr/bin/npx
  rm -rf "$ctx/links"
  # and the certificate authorities this machine trusts (a network may inspect TLS: the npm
  # registry is then reached through the machine's own CA)
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  build_dockerfile node "$hash" "$ctx"
  rm -rf "$ctx"
  trap - EXIT
}

declare -A DONE=()
build() {
  local name=$1 parent=${PARENT[$1]} hash start
  [ -n "${DONE[$name]+x}" ] && return 0
  hash=$(content_hash "$name")
  if [ "$force" -eq 0 ] && [ "$(image_label "${TAG[$name]}")" = "$hash" ]; then
    log "$name: ${TAG[$name]} up to date ($hash)"
    DONE[$name]=1
    return 0
  fi
  # the parent is only needed (and built if missing or outdated) when this one is built
  if [ -n "$parent" ]; then build "$parent"; fi
  log "$name: building ${TAG[$name]} ($hash)"
  start=$(date +%s)
  case "$name" in
    busybox) build_busybox "$hash" ;;
    debian) build_debian "$hash" ;;
    node) build_node "$hash" ;;
    *) build_dockerfile "$name" "$hash" ;;
  esac
  log "$name: built ${TAG[$name]} in $(($(date +%s) - start)) s"
  DONE[$name]=1
}

for t in "${targets[@]}"; do build "$t"; done

# dangling layers left behind by rebuilt images
docker image prune -f --filter "label=$LABEL" >/dev/null 2>&1 || true
