#!/usr/bin/env bash
# obs-gateway figures, SSE-KMS against plain in one run (release daemon and gateway on loopback,
# boto3 with its defaults as the client):
#   1. 64 MiB PUT and GET, MB/s, alternating rounds (goal: SSE-KMS costs at most 15 %);
#   2. 4 KiB PUTs per second at 16 in flight (goal: SSE-KMS at least 0.5 of plain);
#   3. with --big, the gateway's peak RSS (VmHWM) over a 5 GiB SSE-KMS PUT and GET.
# Usage: bash obs-gateway/benches/gateway.sh [ROUNDS] [SECONDS] [--big]   (defaults 3, 5)
#        QUICK=1 shrinks every size, PROFILE=debug uses the debug build (checks that the script
#        runs; not figures).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
secs=${2:-5}
big=${3:-}
profile=${PROFILE:-release}
if [ "$profile" = release ]; then
    cargo build -q --release -p kms-server -p obs-gateway --bins
else
    cargo build -q -p kms-server -p obs-gateway --bins
fi
venv=target/tmp/obs-clients
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    boto3==1.44.5 botocore==1.44.5 esdk-obs-python==3.26.6
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kms_port=$(free_port)
gw_port=$(free_port)
target/$profile/kms-server --data-dir "$work/kms" --listen "127.0.0.1:$kms_port" >"$work/kms.log" 2>&1 &
kms_pid=$!
cat >"$work/creds.toml" <<TOML
[[credentials]]
access_key = "AKBENCH"
secret_key = "sk-bench"
domain_id = "0123456789abcdef0123456789abcdef"
TOML
target/$profile/obs-gateway --data-dir "$work/gw" --listen "127.0.0.1:$gw_port" \
    --kms-endpoint "http://127.0.0.1:$kms_port" --credentials "$work/creds.toml" >"$work/gw.log" 2>&1 &
gw_pid=$!
trap 'kill $gw_pid $kms_pid 2>/dev/null; wait $gw_pid $kms_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    grep -q "listening on" "$work/gw.log" 2>/dev/null && break
    sleep 0.1
done
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
"$venv/bin/python" tests/python/obs_bench.py "http://127.0.0.1:$gw_port" AKBENCH sk-bench \
    "$rounds" "$secs" "$gw_pid" ${big:+--big}
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
