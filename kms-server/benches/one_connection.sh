#!/usr/bin/env bash
# One HTTP/2 connection with 64 calls in flight against 16 connections with 4 each, on the same
# release daemon in one run, for a bare RPC (grpc.health.v1 Check) and for GenerateDataKey. The
# load comes from h2load (Debian's nghttp2-client) in its own process, on loopback.
# Usage: bash kms-server/benches/one_connection.sh [ROUNDS] [REQUESTS]   (defaults 3, 40000)
# Env: KMS_SERVER=path/to/kms-server to measure another build (default: this tree's release build);
# SERVER_CPUS / LOAD_CPUS (taskset lists, e.g. 0 and 1) pin the daemon and h2load apart.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
requests=${2:-40000}
command -v h2load >/dev/null || { echo "needs h2load (apt-get install nghttp2-client)" >&2; exit 1; }
cargo build -q --release -p kms-server -p kmsctl --bins
server=${KMS_SERVER:-target/release/kms-server}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pin() { local cpus=$1; shift; if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi; }
# Started directly, not through `pin`: a function sent to the background is a subshell, and `$!`
# would be that subshell, so the trap would leave the daemon running. taskset execs its command.
server_pin=()
[ -z "${SERVER_CPUS:-}" ] || server_pin=(taskset -c "$SERVER_CPUS")
"${server_pin[@]}" "$server" --data-dir "$work/data" --listen "127.0.0.1:$port" --audit-log "$work/audit.jsonl" \
    >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
domain=0123456789abcdef0123456789abcdef
for _ in $(seq 100); do
    target/release/kmsctl --endpoint "http://127.0.0.1:$port" --domain $domain list-keys >/dev/null 2>&1 && break
    sleep 0.1
done
key=$(target/release/kmsctl --endpoint "http://127.0.0.1:$port" --domain $domain -o json create-key \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["key_id"])')
# gRPC frames: 1 byte flag, 4 bytes length, then the message.
python3 - "$key" "$work" <<'EOF'
import struct, sys
key, work = sys.argv[1].encode(), sys.argv[2]
frame = lambda m: b"\0" + struct.pack(">I", len(m)) + m
open(f"{work}/health.bin", "wb").write(frame(b""))
# GenerateDataKeyRequest { key_id = 1 (string), number_of_bytes = 2 (varint 32) }
msg = b"\x0a" + bytes([len(key)]) + key + b"\x10\x20"
open(f"{work}/gdk.bin", "wb").write(frame(msg))
EOF
run() { # name path body connections streams
    local out
    out=$(pin "${LOAD_CPUS:-}" h2load -n "$requests" -c "$3" -m "$4" -t 1 -d "$work/$2.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' -H "x-kms-domain-id: $domain" \
        "http://127.0.0.1:$port/$1")
    local rps mean max failed
    rps=$(sed -n 's/.*finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
    read -r max mean < <(awk '/time for request:/ {print $5, $6}' <<<"$out")
    failed=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$out" | head -n 1)
    [ "$failed" = 0 ] || { echo "$out" >&2; echo "h2load saw $failed failed requests" >&2; exit 1; }
    echo "$rps $mean $max"
}
printf '%-16s %-7s %10s %10s %10s\n' call shape 'req/s' mean max
for r in $(seq "$rounds"); do
    for call in "grpc.health.v1.Health/Check health" "kms.v1.KeyManagementService/GenerateDataKey gdk"; do
        set -- $call
        one=$(run "$1" "$2" 1 64)
        many=$(run "$1" "$2" 16 4)
        read -r r1 m1 x1 <<<"$one"; read -r r16 m16 x16 <<<"$many"
        printf '%-16s %-7s %10s %10s %10s\n' "$2#$r" 1x64 "$r1" "$m1" "$x1" "$2#$r" 16x4 "$r16" "$m16" "$x16"
        python3 -c "print(f'{\"\":16} ratio   1x64/16x4 throughput {float(\"$r1\")/float(\"$r16\"):.2f}')"
    done
done
