#!/usr/bin/env bash
# A Docker Swarm of N nodes on this machine, for tests: each node is a container running
# Debian's Docker Engine (berth/swarm-node, Docker-in-Docker), node 1 the manager.
#
#   scripts/swarm.sh up [N]      make or resume the cluster (default 3 nodes); prints
#                                `export BERTH_SWARM_MANAGER=tcp://IP:2376` and
#                                `export BERTH_SWARM_CERT_PATH=DIR` on stdout
#   scripts/swarm.sh down        remove the nodes, their volumes and their network
#   scripts/swarm.sh status      the manager's `docker node ls`
#   scripts/swarm.sh edge        the edge: the overlay network berth-edge and a Caddy service
#                                (berth/caddy:2) on node 1, its ports 80, 443 and admin 2019
#                                published on that node only (mode=host: no routing mesh);
#                                prints `export BERTH_EDGE_ADDRESS=IP`
#   scripts/swarm.sh kill K      kill node K's container (a node failure)
#   scripts/swarm.sh start K     start it again and wait for its engine
#
# BERTH_SWARM_IMAGES (default: berth/busybox:latest) are loaded into every node that lacks
# them (`docker save | docker load`: there is no registry). The nodes' engines answer on
# tcp://IP:2376 over TLS only, as a real host's should (dockerd --tlsverify): each presents a
# certificate for its own address, signed by the cluster's CA, and accepts only clients with
# a certificate that CA signed. The CA, the nodes' certificates and the client's (ca.pem,
# cert.pem, key.pem: the docker CLI's DOCKER_CERT_PATH layout) are made here, in
# BERTH_SWARM_TLS_DIR (default /var/lib/berth/swarm-tls). Node K has the address .(10+K) of
# BERTH_SWARM_SUBNET (a /24 or larger), so its certificate can name it before it starts.
# Without --privileged (refused here), a node runs with every capability but SYS_RESOURCE,
# no seccomp or masked paths, every device, and /var/lib/docker on a volume (see
# ../shared/ENVIRONMENT.md, "Docker-in-Docker Swarm nodes").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "[berth] swarm: $*" >&2; }
die() { echo "[berth] swarm: ERROR: $*" >&2; exit 1; }

NET=berth-swarm
SUBNET=${BERTH_SWARM_SUBNET:-10.213.0.0/24}
IMAGE=berth/swarm-node:latest
TLS_DIR=${BERTH_SWARM_TLS_DIR:-/var/lib/berth/swarm-tls}
RESIGNED="" # nodes whose server certificate make_tls made again
IMAGES=${BERTH_SWARM_IMAGES-berth/busybox:latest}
node_name() { echo "berth-swarm-$1"; }
node_ip() { docker inspect -f "{{ (index .NetworkSettings.Networks \"$NET\").IPAddress }}" "$(node_name "$1")"; }
on() { local k=$1; shift; docker exec "$(node_name "$k")" docker "$@"; }
existing_nodes() { docker ps -a --filter label=berth.swarm-node=1 --format '{{.Names}}' | sed 's/^berth-swarm-//' | sort -n; }

node_address() { local base=${SUBNET%/*}; echo "${base%.*}.$((10 + $1))"; }

# The cluster's CA and the client's certificate (made once), and node K's server certificate
# for its name and address (made again if its address changed).
make_tls() { # make_tls N
  local n=$1 k dir ip
  command -v openssl >/dev/null || die "openssl is needed to make the nodes' TLS certificates (apt-get install openssl)"
  command -v curl >/dev/null || die "curl is needed to check each node's engine over TLS (apt-get install curl)"
  mkdir -p "$TLS_DIR"
  chmod 700 "$TLS_DIR"
  if [ ! -s "$TLS_DIR/ca.pem" ] || [ ! -s "$TLS_DIR/ca-key.pem" ]; then
    ssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=Berth test Swarm CA" -keyout "$TLS_DIR/ca-key.pem" -out "$TLS_DIR/ca.pem"
    rm -rf "$TLS_DIR/client" "$TLS_DIR"/node-*
  fi
  if [ ! -s "$TLS_DIR/client/cert.pem" ]; then
    sign "$TLS_DIR/client" "/CN=berth" "extendedKeyUsage=clientAuth" cert.pem key.pem
  fi
  for k in $(seq 1 "$n"); do
    dir="$TLS_DIR/node-$k"
    ip=$(node_address "$k")
    if [ ! -s "$dir/server-cert.pem" ] || ! openssl x509 -in "$dir/server-cert.pem" -noout -checkip "$ip" | grep -q 'does match'; then
      sign "$dir" "/CN=$(node_name "$k")" "extendedKeyUsage=serverAuth
subjectAltName=IP:$ip,DNS:$(node_name "$k"),IP:127.0.0.1" server-cert.pem server-key.pem
      RESIGNED+=" $k"
    fi
  done
}

sign() { # sign DIR SUBJECT EXTENSIONS CERT KEY: a key and a certificate the CA signed, with ca.pem beside them
  local dir=$1 subject=$2 ext=$3 cert=$4 key=$5
  mkdir -p "$dir"
  ssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subject" \
    -keyout "$dir/$key" -out "$dir/req.csr"
  printf '%s\n' "$ext" >"$dir/ext.cnf"
  ssl x509 -req -in "$dir/req.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca-key.pem" -CAcreateserial \
    -days 825 -extfile "$dir/ext.cnf" -out "$dir/$cert"
  cp "$TLS_DIR/ca.pem" "$dir/ca.pem"
  rm -f "$dir/req.csr" "$dir/ext.cnf"
  chmod 600 "$dir/$key"
}

ssl() { # openssl, quiet unless it fails
  local out
  out=$(openssl "$@" 2>&1) || die "openssl $1 failed: $out"
}

# The CA's fingerprint: each node is labelled with the one its certificates come from.
ca_id() { openssl x509 -in "$TLS_DIR/ca.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g'; }

# Whether node K's container was made for this CA and this TLS directory (else it presents,
# or mounts, certificates Berth's client no longer trusts).
node_current() { # node_current K
  local name
  name=$(node_name "$1")
  [ "$(docker inspect -f '{{ index .Config.Labels "berth.swarm-ca" }}' "$name" 2>/dev/null)" = "$(ca_id)" ] &&
    [ "$(docker inspect -f '{{ range .Mounts }}{{ if eq .Destination "/etc/docker/tls" }}{{ .Source }}{{ end }}{{ end }}' "$name")" = "$TLS_DIR/node-$1" ]
}

# node K's engine answers over TLS with the cluster's client certificate (as Berth will ask it)
tls_ping() { # tls_ping K
  curl -sf --max-time 5 --cacert "$TLS_DIR/client/ca.pem" --cert "$TLS_DIR/client/cert.pem" --key "$TLS_DIR/client/key.pem" \
    "https://$(node_address "$1"):2376/_ping" >/dev/null
}

wait_engine() { # wait_engine K: its engine up, and answering over TLS as Berth will ask it
  local k=$1 i
  for i in $(seq 1 120); do
    if on "$k" info >/dev/null 2>&1 && tls_ping "$k"; then return 0; fi
    sleep 0.5
  done
  docker logs --tail 30 "$(node_name "$k")" >&2 || true
  if on "$k" info >/dev/null 2>&1; then
    die "the engine of $(node_name "$k") does not answer over TLS at https://$(node_address "$k"):2376 with the client certificate of $TLS_DIR/client"
  fi
  die "the engine of $(node_name "$k") did not start"
}

start_node() { # start_node K: creates or starts node K's container
  local k=$1 name
  name=$(node_name "$k")
  if docker inspect "$name" >/dev/null 2>&1; then
    [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || docker start "$name" >/dev/null
  else
    docker run -d --name "$name" --hostname "$name" --label berth.swarm-node=1 --label "berth.swarm-ca=$(ca_id)" \
      --network "$NET" --ip "$(node_address "$k")" --restart no \
      -v "$TLS_DIR/node-$k:/etc/docker/tls:ro" \
      --cap-add ALL --cap-drop SYS_RESOURCE \
      --security-opt seccomp=unconfined --security-opt systempaths=unconfined \
      --device-cgroup-rule 'a *:* rwm' --device /dev/fuse \
      -v "$name-docker:/var/lib/docker" \
      "$IMAGE" >/dev/null
  fi
}

load_images() { # load_images K: the images node K lacks (or has another build of)
  local k=$1 img want have
  for img in $IMAGES; do
    want=$(docker image inspect -f '{{.Id}}' "$img") || die "image $img is not on this engine (scripts/images.sh builds it)"
    have=$(on "$k" image inspect -f '{{.Id}}' "$img" 2>/dev/null || true)
    [ "$want" = "$have" ] && continue
    docker save "$img" | docker exec -i "$(node_name "$k")" docker load -q >/dev/null
  done
}

ready_nodes() { on 1 node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$' || true; }

cmd_up() {
  local n=${1:-3} k t0 token ip
  t0=$SECONDS
  bash "$ROOT/scripts/images.sh" swarm-node >&2
  make_tls "$n"
  # Nodes made for another CA or TLS directory, or before TLS (they answered on 2375), would
  # present certificates Berth's client does not trust: the cluster is made again.
  local stale=""
  for k in $(existing_nodes); do node_current "$k" || stale+=" $k"; done
  if [ -n "$stale" ]; then
    log "node(s)$stale were made for other certificates (or before TLS): removing the cluster"
    cmd_down
  fi
  # A node whose certificate was made again reads it at its engine's start.
  for k in $RESIGNED; do
    if docker inspect "$(node_name "$k")" >/dev/null 2>&1; then docker restart "$(node_name "$k")" >/dev/null; fi
  done
  docker network inspect "$NET" >/dev/null 2>&1 || docker network create --subnet "$SUBNET" --label berth.swarm-node=1 "$NET" >/dev/null
  for k in $(seq 1 "$n"); do start_node "$k"; done
  for k in $(seq 1 "$n"); do wait_engine "$k"; done
  log "$n engines up in $((SECONDS - t0)) s"
  ip=$(node_ip 1)
  if [ "$(on 1 info -f '{{.Swarm.LocalNodeState}}')" != active ]; then
    on 1 swarm init --advertise-addr "$ip" >/dev/null
    log "swarm initialised on $(node_name 1) ($ip)"
  fi
  token=$(on 1 swarm join-token -q worker)
  for k in $(seq 2 "$n"); do
    if [ "$(on "$k" info -f '{{.Swarm.LocalNodeState}}')" != active ]; then
      on "$k" swarm join --token "$token" --advertise-addr "$(node_ip "$k")" "$ip:2377" >/dev/null
      log "$(node_name "$k") joined"
    fi
  done
  # A node that left and joined again is listed twice: the old entry stays Down.
  on 1 node ls --format '{{.ID}} {{.Status}}' | awk '$2 == "Down" { print $1 }' | while read -r id; do on 1 node rm --force "$id" >/dev/null || true; done
  for _ in $(seq 1 120); do
    [ "$(ready_nodes)" -ge "$n" ] && break
    sleep 0.5
  done
  [ "$(ready_nodes)" -ge "$n" ] || { on 1 node ls >&2; die "not all $n nodes are Ready"; }
  local t1=$SECONDS pids=()
  for k in $(seq 1 "$n"); do load_images "$k" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || die "loading images into a node failed"; done
  [ -n "$IMAGES" ] && log "images on every node ($IMAGES) in $((SECONDS - t1)) s"
  log "$n nodes Ready in $((SECONDS - t0)) s"
  echo "export BERTH_SWARM_MANAGER=tcp://$ip:2376"
  echo "export BERTH_SWARM_CERT_PATH=$TLS_DIR/client"
}

cmd_down() {
  local k
  for k in $(existing_nodes); do
    docker rm -f "$(node_name "$k")" >/dev/null
    docker volume rm -f "$(node_name "$k")-docker" >/dev/null
  done
  docker network rm "$NET" >/dev/null 2>&1 || true
  log "removed"
}

# The edge as a Swarm service: Caddy on the edge network, which WordPress services join and
# databases never do. Its admin API listens on every address of its container (Berth loads
# its configuration from outside the cluster): on a real host, a firewall keeps port 2019 for
# Berth's address only.
cmd_edge() {
  local ip
  ip=$(node_ip 1)
  on 1 network inspect berth-edge >/dev/null 2>&1 ||
    on 1 network create --driver overlay --label berth.swarm-node=1 berth-edge >/dev/null
  if ! on 1 service inspect berth-edge >/dev/null 2>&1; then
    on 1 service create -q --name berth-edge --label berth.swarm-node=1 \
      --constraint "node.hostname==$(node_name 1)" --network berth-edge --endpoint-mode dnsrr \
      --publish mode=host,target=80,published=80 --publish mode=host,target=443,published=443 \
      --publish mode=host,target=2019,published=2019 \
      --env 'CADDY_INITIAL={"admin":{"listen":":2019"}}' \
      berth/caddy:2 sh -c 'printf %s "$CADDY_INITIAL" >/config/initial.json && exec caddy run --config /config/initial.json' >/dev/null
    log "edge service started on $(node_name 1) ($ip)"
  fi
  echo "export BERTH_EDGE_ADDRESS=$ip"
}

case "${1:-}" in
  up) cmd_up "${2:-3}" ;;
  edge) cmd_edge ;;
  down) cmd_down ;;
  status) on 1 node ls ;;
  kill) docker kill "$(node_name "${2:?node number}")" >/dev/null ;;
  start)
    start_node "${2:?node number}"
    wait_engine "$2"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
