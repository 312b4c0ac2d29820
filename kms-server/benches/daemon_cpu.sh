#!/usr/bin/env bash
# The daemon's own cost per call, GenerateDataKey (and Encrypt, Decrypt, GetDefaultKey) against a
# bare RPC (grpc.health.v1 Check) on the same release daemon, audit log on, in one run:
# - cpu: the daemon's CPU time per request, and its user and system parts, from /proc/<pid>/stat
#   while h2load (Debian's nghttp2-client, its own process, loopback) sends pre-encoded gRPC
#   frames; rounds alternate, medians are printed, with the throughput, h2load's own CPU time per
#   request and the time the cores sat idle per request (the rate is the cores' time over the
#   three). The bare RPC runs before and after every other call, and each call's ratios are to
#   the mean of those two neighbours, round by round (median, lowest and highest round).
# - instructions: the same calls with the daemon under callgrind (valgrind), instructions per
#   request; repeatable whatever else the machine is doing.
# - cache: as instructions, with callgrind's cache and branch simulation (the machine's cache
#   geometry): per request, instructions (Ir), L1 instruction misses (I1mr), L1 data read and
#   write misses (D1mr, D1mw), last-level misses (ILmr, DLmr, DLmw), conditional and indirect
#   branches and their mispredictions (Bc, Bcm, Bi, Bim). For hosts without PMU counters.
# - API=rest: the Huawei REST create-datakey over HTTP/1.1 keep-alive (16 connections, one request
#   each in flight, as the Huawei SDK's pool does) against Vault's `GET /v1/sys/health`, the
#   cheapest HTTP handler on the same server stack, in place of the gRPC calls.
# Usage: bash kms-server/benches/daemon_cpu.sh [cpu|instructions|cache] [ROUNDS] [REQUESTS]
#   (defaults: cpu, 5 rounds, 40000 requests; instructions and cache use 2000 requests)
# Env: KMS_SERVER=path/to/kms-server to measure another build; KMS_SERVER_B=path to measure a
#   second build in the same rounds (each daemon idle while the other is loaded, the order
#   alternating by round), so that a before/after comparison sees one state of the host;
#   INFLIGHT="16 64" (cpu mode); API=grpc|rest (default grpc); SERVER_CPUS / LOAD_CPUS (taskset
#   lists, e.g. 0 and 1) pin the daemons and h2load apart, so that h2load does not take the
#   daemon's core and the throughput shows the daemon's own cost.
set -euo pipefail
cd "$(dirname "$0")/../.."
# taskset execs its command, so a daemon's `$!` stays the daemon's own process for /proc.
server_pin=() load_pin=()
[ -z "${SERVER_CPUS:-}" ] || server_pin=(taskset -c "$SERVER_CPUS")
[ -z "${LOAD_CPUS:-}" ] || load_pin=(taskset -c "$LOAD_CPUS")
mode=${1:-cpu}
rounds=${2:-5}
case $mode in
    cpu) requests=${3:-40000} ;;
    instructions | cache) requests=${3:-2000} ;;
    *) echo "unknown mode $mode (cpu, instructions or cache)" >&2; exit 2 ;;
esac
command -v h2load >/dev/null || { echo "needs h2load (apt-get install nghttp2-client)" >&2; exit 1; }
[ "$mode" = cpu ] || command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }
simulate=()
[ "$mode" != cache ] || simulate=(--cache-sim=yes --branch-sim=yes)
cargo build -q --release -p kms-server -p kmsctl --bins
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
domain=0123456789abcdef0123456789abcdef
declare -A pid port
# Starts build $2 as daemon $1 (its own data, audit log, key and pre-encoded requests in $work/$1).
start() {
    local d=$work/$1 p
    mkdir -p "$d"
    p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    local wrap=()
    [ "$mode" = cpu ] || wrap=(valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" --dump-instr=no "${simulate[@]}")
    "${server_pin[@]}" "${wrap[@]}" "$2" --data-dir "$d/data" --listen "127.0.0.1:$p" --audit-log "$d/audit.jsonl" \
        >"$d/server.log" 2>&1 &
    pid[$1]=$!
    pids+=($!)
    port[$1]=$p
    local kmsctl=(target/release/kmsctl --endpoint "http://127.0.0.1:$p" --domain $domain) key blob
    for _ in $(seq 600); do "${kmsctl[@]}" list-keys >/dev/null 2>&1 && break; sleep 0.1; done
    key=$("${kmsctl[@]}" -o json create-key | python3 -c 'import json,sys; print(json.load(sys.stdin)["key_id"])')
    blob=$("${kmsctl[@]}" -o json encrypt "$key" --plaintext-base64 "$(head -c 32 /dev/urandom | base64)" \
        | python3 -c "import json,sys; print(json.load(sys.stdin)[\"ciphertext_blob\"])")
    # gRPC frames: 1 byte flag, 4 bytes length, then the protobuf message (field numbers from kms.v1).
    python3 - "$key" "$d" "$blob" <<'PY'
import base64, struct, sys
key, work, blob = sys.argv[1].encode(), sys.argv[2], sys.argv[3]
frame = lambda m: b"\0" + struct.pack(">I", len(m)) + m
ld = lambda field, b: bytes([field << 3 | 2]) + bytes([len(b)]) + b
open(f"{work}/health.bin", "wb").write(frame(b""))
open(f"{work}/gdk.bin", "wb").write(frame(ld(1, key) + b"\x10\x20"))
open(f"{work}/encrypt.bin", "wb").write(frame(ld(1, key) + ld(2, b"\x07" * 32)))
open(f"{work}/defaultkey.bin", "wb").write(frame(ld(1, b"obs")))
open(f"{work}/decrypt.bin", "wb").write(frame(ld(1, base64.b64decode(blob))))
open(f"{work}/createdatakey.json", "wb").write(
    b'{"key_id":"' + key.split(b"/")[-1] + b'","datakey_length":"256"}')
PY
}
# A: the build measured (KMS_SERVER); B, when KMS_SERVER_B is set, a second build measured in the
# same rounds, so that both see the same state of the host.
builds=(A)
start A "${KMS_SERVER:-target/release/kms-server}"
if [ -n "${KMS_SERVER_B:-}" ]; then
    builds+=(B)
    start B "$KMS_SERVER_B"
fi
calls=(
    "grpc.health.v1.Health/Check health"
    "kms.v1.KeyManagementService/GenerateDataKey gdk"
    "kms.v1.KeyManagementService/Encrypt encrypt"
    "kms.v1.KeyManagementService/GetDefaultKey defaultkey"
    "kms.v1.KeyManagementService/Decrypt decrypt"
)
load() { # daemon path body connections streams -> h2load output
    "${load_pin[@]}" h2load -n "$requests" -c "$4" -m "$5" -t 1 -d "$work/$1/$3.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' -H "x-kms-domain-id: $domain" \
        "http://127.0.0.1:${port[$1]}/$2"
}
if [ "${API:-grpc}" = rest ]; then
    calls=("v1/sys/health health" "v1.0/$domain/kms/create-datakey createdatakey")
    # HTTP/1.1: every connection carries one request at a time, so "in flight" is connections.
    load() { # daemon path body connections streams -> h2load output
        local body=()
        [ "$3" = health ] || body=(-d "$work/$1/$3.json" -H 'content-type: application/json;charset=UTF-8')
        "${load_pin[@]}" h2load --h1 -n "$requests" -c $(($4 * $5)) -m 1 -t 1 "${body[@]}" "http://127.0.0.1:${port[$1]}/$2"
    }
fi
# The builds in round $1's order: A first in odd rounds, B first in even ones.
order() { if [ $(($1 % 2)) = 1 ]; then echo "${builds[@]}"; else printf '%s\n' "${builds[@]}" | tac | tr '\n' ' '; fi; }
# The daemon's user and system CPU ticks (all its threads: the workers and the audit writer).
cpu_ticks() { awk '{print $14, $15}' "/proc/${pid[$1]}/stat"; }
if [ "$mode" != cpu ]; then
    # Each callgrind dump holds the events since the previous one.
    dump() { callgrind_control -d "${pid[$1]}" >/dev/null 2>&1; sleep 1; ls -t "$work/$1"/cg.out.* | head -n 1; }
    # A dump's events per request, one column each, named on the first line.
    per_request() {
        awk -v n="$requests" -v head="$1" '
            /^events:/ { for (i = 2; i <= NF; i++) name[i] = $i }
            /^summary:/ {
                for (i = 2; i <= NF; i++) if (head) printf " %8s", name[i]; else printf " %8d", $i / n
                print ""
            }' "$2"
    }
    for b in "${builds[@]}"; do for call in "${calls[@]}"; do set -- $call; load "$b" "$1" "$2" 4 16 >/dev/null; done; done # warm up
    if [ "$mode" = instructions ]; then
        printf '%-5s %-12s %14s\n' build call 'instr/request'
    fi
    for r in $(seq "$rounds"); do
        for b in $(order "$r"); do
            for call in "${calls[@]}"; do
                set -- $call
                dump "$b" >/dev/null
                out=$(load "$b" "$1" "$2" 4 16)
                grep -q ' 0 failed' <<<"$out" || { echo "$out" >&2; exit 1; }
                cg=$(dump "$b")
                if [ "$mode" = instructions ]; then
                    total=$(sed -n 's/^summary: //p' "$cg")
                    printf '%-5s %-12s %14s\n' "$b" "$2#$r" "$((total / requests))"
                else
                    [ -n "${named:-}" ] || { printf '%-5s %-12s' build call; per_request 1 "$cg"; named=1; }
                    printf '%-5s %-12s' "$b" "$2#$r"
                    per_request 0 "$cg"
                fi
            done
        done
    done
    exit 0
fi
hz=$(getconf CLK_TCK)
for b in "${builds[@]}"; do for call in "${calls[@]}"; do set -- $call; load "$b" "$1" "$2" 4 16 >/dev/null; done; done # warm up
results=$work/results
# The machine's CPU ticks (all, and stolen by the hypervisor) from /proc/stat, so that the figures
# say how contended the host was while they were taken.
host_ticks() { awk '/^cpu /{t=0; for (i = 2; i <= NF; i++) t += $i; print t, $9}' /proc/stat; }
# The time both cores sat idle (idle and iowait ticks), so that the rate can be told apart: the
# rate is the cores' time over daemon + load generator + idle per request.
idle_ticks() { awk '/^cpu /{print $5 + $6}' /proc/stat; }
# h2load's CPU time in microseconds, from the `times` line of its subshell (children's user and
# system time, "XmY.YYYs XmY.YYYs").
load_us() { tail -n 1 | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } printf "%d", t * 1000000 }'; }
read -r host0 steal0 < <(host_ticks)
# Each round measures the bare RPC before and after every other call (H c1 H c2 H ... H), so that
# each call has a baseline taken within a second or two of it on either side.
sequence=("${calls[0]}")
for call in "${calls[@]:1}"; do sequence+=("$call" "${calls[0]}"); done
for r in $(seq "$rounds"); do
    for inflight in ${INFLIGHT:-16 64}; do
        for b in $(order "$r"); do
            for call in "${sequence[@]}"; do
                set -- $call
                read -r u0 s0 < <(cpu_ticks "$b")
                i0=$(idle_ticks)
                out=$(load "$b" "$1" "$2" 4 $((inflight / 4)); times)
                i1=$(idle_ticks)
                read -r u1 s1 < <(cpu_ticks "$b")
                grep -q ' 0 failed' <<<"$out" || { echo "$out" >&2; exit 1; }
                rps=$(sed -n 's/.*finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
                # build call in-flight req/s user-us requests h2load-us idle-us system-us round
                echo "$b $2 $inflight $rps $(( (u1 - u0) * 1000000 / hz )) $requests" \
                    "$(load_us <<<"$out") $(( (i1 - i0) * 1000000 / hz ))" \
                    "$(( (s1 - s0) * 1000000 / hz )) $r" >>"$results"
            done
        done
    done
done
read -r host1 steal1 < <(host_ticks)
echo "host: $(( (steal1 - steal0) * 100 / (host1 - host0 > 0 ? host1 - host0 : 1) ))% of CPU time stolen by the hypervisor during the run (close to 0 on a quiet host)"
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
builds = list(dict.fromkeys(r[0] for r in rows))
calls = list(dict.fromkeys(r[1] for r in rows))
base = calls[0]
cpu_of = lambda r: (int(r[4]) + int(r[8])) / int(r[5])
# Each call's ratios against the mean of the bare RPC rows either side of it, per round.
sequences = {}
for r in rows:
    sequences.setdefault((r[0], int(r[2]), r[9]), []).append(r)
paired = {}
for (build, inflight, _), seq in sequences.items():
    for before, row, after in zip(seq[0::2], seq[1::2], seq[2::2]):
        assert before[1] == base == after[1] and row[1] != base, "sequence H c H c ... H"
        bcpu = (cpu_of(before) + cpu_of(after)) / 2
        brps = (float(before[3]) + float(after[3])) / 2
        p = paired.setdefault((build, inflight, row[1]), ([], []))
        p[0].append(bcpu / cpu_of(row))
        p[1].append(float(row[3]) / brps)
nrounds = len({r[9] for r in rows})
spread = lambda v: f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"
for build in builds:
    for inflight in sorted({int(r[2]) for r in rows}):
        med = {}
        for c in calls:
            rs = [r for r in rows if r[0] == build and r[1] == c and int(r[2]) == inflight]
            per = lambda i: statistics.median(int(r[i]) / int(r[5]) for r in rs)
            med[c] = (statistics.median(float(r[3]) for r in rs),
                      statistics.median(cpu_of(r) for r in rs), per(6), per(7), per(4), per(8))
        label = f"build {build}, " if len(builds) > 1 else ""
        print(f"\n{label}{inflight} in flight (4 connections), medians of {nrounds} rounds; ratios"
              f" paired with the {base} calls either side, median (lowest-highest round)")
        print(f"{'call':13} {'req/s':>10} {'us CPU/req':>11} {'user':>6} {'sys':>6} {'CPU ratio':>17}"
              f" {'tput ratio':>17} {'h2load us/req':>14} {'idle us/req':>12}")
        for c in calls:
            rps, cpu, gen, idle, user, system = med[c]
            cr, tr = paired.get((build, inflight, c), ([1.0], [1.0]))
            print(f"{c:13} {rps:10.0f} {cpu:11.1f} {user:6.1f} {system:6.1f} {spread(cr):>17}"
                  f" {spread(tr):>17} {gen:14.1f} {idle:12.1f}")
PY
