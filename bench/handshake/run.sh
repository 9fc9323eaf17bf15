#!/usr/bin/env bash
# Full TLS 1.3 handshakes per second and server CPU per handshake, measured
# from outside: passerelle serve (a chat listener in files mode, ECDSA P-256
# certificate) against nginx with the same certificate, in the same run.
# The server is pinned with taskset to one core, then to two; nginx gets as
# many workers as cores. Every handshake is a full one (no resumption), with
# the client's default key exchange (X25519MLKEM768, which nginx 1.22 with
# OpenSSL 3.0 does not offer: it falls back to X25519) and with X25519 only.
#
#   bench/handshake/run.sh
#   CONNS=128 DURATION=10s bench/handshake/run.sh
#   PASSERELLE=/tmp/old/passerelle bench/handshake/run.sh   # another build
#   NGINX_BIN=skip bench/handshake/run.sh                 # passerelle alone
#
# With one server core the load generator is pinned to the other core(s);
# with two server cores on a two-core machine it cannot be kept apart and
# runs unpinned: handshakes/s is then shared with the client's own
# handshake work, and CPU per handshake is the figure to compare.
#
# Needs go and openssl; installs nginx (Debian package) when missing, or
# skips it with a message when it cannot. Listens on 127.0.0.1 only and
# stops everything on exit.
set -euo pipefail
CONNS=${CONNS:-64}
DURATION=${DURATION:-6s}
CORES=${CORES:-"1 2"}
KEX=${KEX:-"default x25519"}
CHAT_PORT=${CHAT_PORT:-18101}
NGINX_PORT=${NGINX_PORT:-18543}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/handshake-bench.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

for tool in go openssl taskset; do
	command -v "$tool" >/dev/null || die "$tool is required"
done
ncpu=$(nproc)
# nginx reads a variable named NGINX (inherited sockets): ours is NGINX_BIN.
unset NGINX
if [ "${NGINX_BIN:-}" != skip ] && ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
	say "installing nginx (Debian package)"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -qq && { apt-get install -y -qq nginx-light || apt-get install -y -qq nginx; }; } >/dev/null 2>&1 ||
		say "could not install nginx: measuring passerelle alone"
fi
if [ "${NGINX_BIN:-}" = skip ]; then
	NGINX_BIN=
elif [ -z "${NGINX_BIN:-}" ]; then
	NGINX_BIN=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
	[ -n "$NGINX_BIN" ] || say "nginx not found: measuring passerelle alone"
fi

(cd "$repo" && go build -o "$work/handshake" ./bench/handshake)
if [ -z "${PASSERELLE:-}" ]; then
	(cd "$repo" && go build -o "$work/passerelle" ./cmd/passerelle)
	PASSERELLE=$work/passerelle
fi

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj "/CN=handshake bench CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj "/CN=localhost" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
	-days 1 -extfile "$work/ext.cnf" -out "$work/server.pem" 2>/dev/null
chmod 600 "$work/server.key"
mkdir -p "$work/nginx-tmp" "$work/data"
chmod 755 "$work"

wait_port() {
	for _ in $(seq 1 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	die "nothing listens on 127.0.0.1:$1 (see $2)"
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; }

# measure LABEL PORT PROTO SERVERCPUS PIDS...
measure() {
	local label=$1 port=$2 proto=$3 cpus=$4; shift 4
	local pids; pids=$(IFS=,; echo "$*")
	local client=()
	# Keep the load generator off the server's cores where there are cores
	# left for it.
	local rest; rest=$(seq 0 $((ncpu - 1)) | grep -vxF -f <(echo "$cpus" | tr , '\n') | paste -sd, || true)
	[ -n "$rest" ] && client=(taskset -c "$rest")
	for kex in $KEX; do
		"${client[@]}" "$work/handshake" -addr "127.0.0.1:$port" -ca "$work/ca.pem" -proto "$proto" \
			-conns "$CONNS" -duration "$DURATION" -kex "$kex" -pid "$pids" -label "$label: "
	done
}

say "machine: $ncpu cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg); $(go version | cut -d' ' -f3)"
[ -n "$NGINX_BIN" ] && say "nginx: $("$NGINX_BIN" -V 2>&1 | sed -n 's/^nginx version: //p'), $("$NGINX_BIN" -V 2>&1 | sed -n 's/^built with //p')"
for n in $CORES; do
	[ "$n" -le "$ncpu" ] || { say "skipping $n server cores: the machine has $ncpu"; continue; }
	cpus=$(seq -s, 0 $((n - 1)))
	sed -e "s|@WORK@|$work|g" -e "s|@PORT@|$CHAT_PORT|g" "$here/passerelle.yaml" >"$work/passerelle.yaml"
	taskset -c "$cpus" "$PASSERELLE" serve --config "$work/passerelle.yaml" --log-level warn >"$work/passerelle.out" 2>"$work/passerelle.log" &
	pid=$!
	wait_port "$CHAT_PORT" "$work/passerelle.log"
	measure "passerelle, $n core(s)" "$CHAT_PORT" chat "$cpus" "$pid"
	stop
	if [ -n "$NGINX_BIN" ]; then
		sed -e "s|@WORK@|$work|g" -e "s|@PORT@|$NGINX_PORT|g" -e "s|@WORKERS@|$n|g" "$here/nginx.conf" >"$work/nginx.conf"
		taskset -c "$cpus" "$NGINX_BIN" -c "$work/nginx.conf" -e "$work/nginx-error.log" &
		pid=$!
		wait_port "$NGINX_PORT" "$work/nginx-error.log"
		workers=$(pgrep -P "$pid" | paste -sd' ')
		measure "nginx, $n core(s), $n worker(s)" "$NGINX_PORT" http "$cpus" "$pid" $workers
		stop
	fi
done
