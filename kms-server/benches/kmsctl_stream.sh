#!/usr/bin/env bash
# kmsctl seal/open figures: peak RSS sealing a 1 GiB pipe, and a 1 MiB range read from a 1 GiB
# sealed file against one from a 16 MiB file (same run, alternating, N rounds each).
# Usage: bash kms-server/benches/kmsctl_stream.sh [ROUNDS]   (needs /usr/bin/time; offline KEK)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-20}
cargo build -q --release -p kmsctl --bin kmsctl
k=target/release/kmsctl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 32 /dev/urandom > "$work/kek"

rss_kib=$( { head -c 1073741824 /dev/zero \
  | /usr/bin/time -f '%M' "$k" seal --local-kek "$work/kek" --key-id bench --in - --out "$work/big.sealed" 2>&1 >/dev/null; } | tail -n 1)
echo "peak RSS sealing 1 GiB from a pipe: ${rss_kib} KiB"

head -c 16777216 /dev/urandom | "$k" seal --local-kek "$work/kek" --key-id bench --in - --out "$work/small.sealed" >/dev/null 2>&1

now() { date +%s%N; }
big=0; small=0
for _ in $(seq "$rounds"); do
  t=$(now); "$k" open --local-kek "$work/kek" --in "$work/big.sealed" --out /dev/null --range 536870912-537919487 >/dev/null 2>&1; big=$((big + $(now) - t))
  t=$(now); "$k" open --local-kek "$work/kek" --in "$work/small.sealed" --out /dev/null --range 8388608-9437183 >/dev/null 2>&1; small=$((small + $(now) - t))
done
echo "1 MiB range read, mean of $rounds: from 1 GiB $((big / rounds / 1000)) us, from 16 MiB $((small / rounds / 1000)) us"
awk -v b="$big" -v s="$small" 'BEGIN { printf "ratio (1 GiB / 16 MiB): %.2f\n", b / s }'
