#!/usr/bin/env bash
# The chat relay measured from outside, through the real binary and its TLS
# listener on loopback: memory per idle TLS client (server VmRSS growth / N)
# and per idle WebSocket client, and fan-out (1 sender, 100 receivers,
# 128-byte messages).
#
#   bench/chatload/run.sh                    # 10,000 idle clients, 20,000 messages
#   CONNS=2000 MESSAGES=5000 bench/chatload/run.sh
#   GOGC=100 bench/chatload/run.sh           # Go's default GC target instead of runtime.gc_percent (50)
#   RATES="30000 45000 60000" bench/chatload/run.sh   # open loop: offered msgs/s, SECONDS each
#   PASSERELLE=/tmp/old/passerelle bench/chatload/run.sh  # another build
#   TRANSPORTS=websocket bench/chatload/run.sh # only WebSocket receivers (default: raw websocket mixed)
#   IDLE_TRANSPORTS=raw bench/chatload/run.sh  # idle clients over raw TLS only (default: raw websocket)
#   TRANSPORTS=none bench/chatload/run.sh      # idle clients only (IDLE_TRANSPORTS=none: fan-out only)
#
# With RATES, the sender offers each rate for SECONDS (default 5) whatever
# the receivers do, a fresh server for each, and each line reports the
# receivers the relay dropped, the delivered rate and the latency from each
# message's due time; the receivers are raw TLS clients unless TRANSPORTS
# names others; the idle and windowed fan-out runs are skipped.
#   TRANSPORTS=websocket RATES="20000 30000" bench/chatload/run.sh
#   NATS=1 RATES=50000 bench/chatload/run.sh  # then the same open loop against nats-server
#
# Needs go. Listens on 127.0.0.1 only, stops everything on exit.
set -euo pipefail
CONNS=${CONNS:-10000}
MESSAGES=${MESSAGES:-20000}
RECEIVERS=${RECEIVERS:-100}
RATES=${RATES:-}
SECONDS_EACH=${SECONDS:-5}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/chatload.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$repo" && go build -o "$work/chatload" ./bench/chatload)
if [ -n "${PASSERELLE:-}" ]; then
	cp "$PASSERELLE" "$work/passerelle"
else
	(cd "$repo" && go build -o "$work/passerelle" ./cmd/passerelle)
fi

start() {
	# No flood limit: the sender is a load generator, not a chat user.
	PASSERELLE_CHAT_FLOOD_RATE=0 PASSERELLE_LIMITS_MAX_CONNS=$((CONNS + 100)) PASSERELLE_LIMITS_MAX_CONNS_PER_ADDRESS=$((CONNS + 100)) \
		"$work/passerelle" --data-dir "$work/data" --log-level warn serve \
		--chat-address 127.0.0.1:0 --assets-address 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
	pid=$!
	for _ in $(seq 100); do
		addr=$(sed -n 's/^passerelle: chat on \([^ ]*\).*/\1/p' "$work/serve.out")
		[ -n "$addr" ] && return
		sleep 0.1
	done
	echo "serve did not start:" >&2; cat "$work/serve.err" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$RATES" ]; then
	for transport in ${TRANSPORTS:-raw}; do
		[ "$transport" = none ] && continue
		for rate in $RATES; do
			start
			echo "receivers: $transport"
			"$work/chatload" -mode fanout -transport "$transport" -addr "$addr" -ca "$work/data/ca/ca.pem" -receivers "$RECEIVERS" \
				-rate "$rate" -messages $((rate * SECONDS_EACH))
			stop
		done
	done
	[ -n "${NATS:-}" ] || exit 0
	# The same open loop against nats-server (NATS=1; the binary on PATH or
	# in $(go env GOPATH)/bin, e.g. from go install
	# github.com/nats-io/nats-server/v2@v2.15.2, the version go.mod pins),
	# over TLS with a certificate made here, one subject, one connection
	# per subscriber.
	nats=$(command -v nats-server || echo "$(go env GOPATH)/bin/nats-server")
	[ -x "$nats" ] || { echo "nats-server not found: go install github.com/nats-io/nats-server/v2@v2.15.2" >&2; exit 1; }
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj "/CN=chatload NATS CA" -keyout "$work/nats-ca.key" -out "$work/nats-ca.pem" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
		-keyout "$work/nats.key" -out "$work/nats.csr" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/nats-ext.cnf"
	openssl x509 -req -in "$work/nats.csr" -CA "$work/nats-ca.pem" -CAkey "$work/nats-ca.key" -CAcreateserial \
		-days 1 -extfile "$work/nats-ext.cnf" -out "$work/nats.pem" 2>/dev/null
	nats_port=${NATS_PORT:-18422}
	for rate in $RATES; do
		"$nats" -a 127.0.0.1 -p "$nats_port" --tls --tlscert "$work/nats.pem" --tlskey "$work/nats.key" >"$work/nats.log" 2>&1 &
		pid=$!
		for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done
		echo "nats-server $("$nats" --version | sed 's/^nats-server: //')"
		"$work/chatload" -mode nats -addr "127.0.0.1:$nats_port" -ca "$work/nats-ca.pem" -receivers "$RECEIVERS" \
			-rate "$rate" -messages $((rate * SECONDS_EACH))
		stop
	done
	exit 0
fi
# The same fan-out with raw TLS receivers, WebSocket receivers, and half of
# each, one after the other against the same binary.
# The server's CPU time (user + system, from /proc) is printed beside each,
# since the load generator shares the machine.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
for transport in ${TRANSPORTS:-raw websocket mixed}; do
	[ "$transport" = none ] && continue
	start
	echo "receivers: $transport"
	before=$(cpu_ticks)
	"$work/chatload" -mode fanout -transport "$transport" -addr "$addr" -ca "$work/data/ca/ca.pem" -receivers "$RECEIVERS" -messages "$MESSAGES"
	after=$(cpu_ticks)
	echo "server CPU: $(( (after - before) * 1000 / $(getconf CLK_TCK) )) ms for $((MESSAGES * RECEIVERS)) deliveries"
	stop
done
# Idle clients, raw TLS then WebSocket over TLS, a fresh server for each.
for transport in ${IDLE_TRANSPORTS:-raw websocket}; do
	[ "$transport" = none ] && continue
	start
	"$work/chatload" -mode idle -transport "$transport" -addr "$addr" -ca "$work/data/ca/ca.pem" -pid "$pid" -conns "$CONNS"
	stop
done
