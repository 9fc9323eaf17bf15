#!/usr/bin/env bash
# Throughput of one large file over TLS on loopback: passerelle's ENVOIE
# stream (passerelle serve + passerelle get) against nginx over HTTPS, same
# file, same certificate, same cipher, same run. nginx is fetched twice: with
# curl, and with Go's net/http (httpget/), the TLS stack passerelle get uses,
# so the servers can be compared apart from the clients.
#
#   bench/envoie/run.sh                 # 1 GiB file, 5 timed runs each
#   SIZE_MIB=256 RUNS=3 bench/envoie/run.sh
#
# Needs go, openssl, curl and python3; installs nginx (Debian package) when
# missing. Everything listens on
# 127.0.0.1 only and is stopped on exit. Prints MB/s and CPU time for each
# side and the ratios of passerelle to each nginx side.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-5}
ENVOIE_PORT=${ENVOIE_PORT:-18001}
NGINX_PORT=${NGINX_PORT:-18443}
# Go's TLS 1.3 server picks AES-128-GCM where the CPU has AES instructions;
# curl would ask nginx for AES-256-GCM first. Pin curl to the same suite.
CURL_CIPHER=${CURL_CIPHER:-TLS_AES_128_GCM_SHA256}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/envoie-bench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

for tool in go openssl curl python3; do
	command -v "$tool" >/dev/null || die "$tool is required"
done
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
	say "installing nginx (Debian package)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq nginx-light >/dev/null 2>&1 || apt-get install -y -qq nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

say "building passerelle"
(cd "$repo" && go build -o "$work/passerelle" ./cmd/passerelle && go build -o "$work/httpget" ./bench/envoie/httpget)

say "making a CA and a certificate for localhost and 127.0.0.1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj "/CN=envoie bench CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj "/CN=localhost" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
	-days 1 -extfile "$work/ext.cnf" -out "$work/server.pem" 2>/dev/null
chmod 600 "$work/server.key"

say "writing a ${SIZE_MIB} MiB file of random bytes"
mkdir -p "$work/assets" "$work/nginx-tmp" "$work/data"
# nginx's workers drop root for www-data: let them reach the file.
chmod 755 "$work" "$work/assets"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$work/assets/big.bin"
want=$(sha256sum "$work/assets/big.bin" | cut -d' ' -f1)

fill() { sed -e "s|@WORK@|$work|g" -e "s|@PORT@|$2|g" "$here/$1" >"$work/$1"; }
fill nginx.conf "$NGINX_PORT"
fill passerelle.yaml "$ENVOIE_PORT"

"$NGINX" -c "$work/nginx.conf" -e "$work/nginx-error.log" &
pids+=($!)
nginx_pid=$!
"$work/passerelle" serve --config "$work/passerelle.yaml" --log-level warn 2>"$work/passerelle.log" &
pids+=($!)
passerelle_pid=$!

wait_port() {
	for _ in $(seq 1 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	die "nothing listens on 127.0.0.1:$1 (see $2)"
}
wait_port "$NGINX_PORT" "$work/nginx-error.log"
wait_port "$ENVOIE_PORT" "$work/passerelle.log"

get_cmd="$work/passerelle get 127.0.0.1:$ENVOIE_PORT big.bin --data-dir $work/data --ca $work/ca.pem --servername localhost -o /dev/null"
gohttp_cmd="$work/httpget -ca $work/ca.pem https://localhost:$NGINX_PORT/big.bin"
curl_cmd="curl -sS --fail --cacert $work/ca.pem --tls13-ciphers $CURL_CIPHER -o /dev/null https://localhost:$NGINX_PORT/big.bin"

say "checking both sides deliver the file intact"
$work/passerelle get 127.0.0.1:$ENVOIE_PORT big.bin --data-dir "$work/data" --ca "$work/ca.pem" --servername localhost -o "$work/via-envoie.bin"
curl -sS --fail --cacert "$work/ca.pem" --tls13-ciphers "$CURL_CIPHER" -o "$work/via-nginx.bin" "https://localhost:$NGINX_PORT/big.bin"
for f in via-envoie.bin via-nginx.bin; do
	[ "$(sha256sum "$work/$f" | cut -d' ' -f1)" = "$want" ] || die "$f differs from the served file"
	rm -f "$work/$f"
done

bytes=$((SIZE_MIB * 1024 * 1024))
# The two sides alternate run by run, so that load from elsewhere on a shared
# machine falls on both alike; measure.py reports the median wall time and
# the CPU time of each client and server.
say "timing: one warm-up each, then $RUNS alternating runs of each side"
eval "$get_cmd"
eval "$curl_cmd"
eval "$gohttp_cmd"
python3 "$here/measure.py" "$RUNS" "$bytes" \
	"passerelle:$passerelle_pid:$get_cmd" "nginx+curl:$nginx_pid:$curl_cmd" "nginx+go:$nginx_pid:$gohttp_cmd"
awk '/VmHWM/ {print "passerelle serve peak RSS: " $2 " KiB"}' "/proc/$passerelle_pid/status"
