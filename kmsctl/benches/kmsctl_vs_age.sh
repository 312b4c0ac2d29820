#!/usr/bin/env bash
# kmsctl seal/open against age (Debian's `age`, ChaCha20-Poly1305 STREAM) on the same command shape:
# 1 GiB from a file on standard input to /dev/null, offline keys (kmsctl: a local KEK; age: an
# X25519 identity). Rounds alternate kmsctl and age; the medians and ratios are printed at the end.
# Usage: bash kmsctl/benches/kmsctl_vs_age.sh [ROUNDS] [KMSCTL_BINARY]
#   (needs `age` and `age-keygen` on PATH; the files live under a fresh temporary folder)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
k=${2:-}
if [ -z "$k" ]; then
  cargo build -q --release -p kmsctl --bin kmsctl
  k=target/release/kmsctl
fi
command -v age >/dev/null || { echo "age is not installed (apt-get install -y age)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 32 /dev/urandom > "$work/kek"
age-keygen -o "$work/id" 2>/dev/null
recipient=$(age-keygen -y "$work/id")
head -c 1073741824 /dev/urandom > "$work/plain"
"$k" seal --local-kek "$work/kek" --key-id bench --in - --out "$work/plain.kms" < "$work/plain" >/dev/null
age -r "$recipient" < "$work/plain" > "$work/plain.age"
# Both round-trip before anything is timed.
cmp <("$k" open --local-kek "$work/kek" --in - --out - < "$work/plain.kms" 2>/dev/null) "$work/plain"
cmp <(age -d -i "$work/id" < "$work/plain.age") "$work/plain"

# One timed run: wall milliseconds and CPU milliseconds (user + system) of the command.
run() {
  /usr/bin/time -f '%e %U %S' -o "$work/time" sh -c "$1" >/dev/null 2>&1
  awk '{ printf "%d %d\n", $1 * 1000, ($2 + $3) * 1000 }' "$work/time"
}
declare -a ks ko as ao kcs kco acs aco
for _ in $(seq "$rounds"); do
  read -r w c < <(run "'$k' seal --local-kek '$work/kek' --key-id bench --in - --out - < '$work/plain' > /dev/null"); ks+=("$w"); kcs+=("$c")
  read -r w c < <(run "age -r '$recipient' < '$work/plain' > /dev/null"); as+=("$w"); acs+=("$c")
  read -r w c < <(run "'$k' open --local-kek '$work/kek' --in - --out - < '$work/plain.kms' > /dev/null"); ko+=("$w"); kco+=("$c")
  read -r w c < <(run "age -d -i '$work/id' < '$work/plain.age' > /dev/null"); ao+=("$w"); aco+=("$c")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "seal wall ms, kmsctl: ${ks[*]}; age: ${as[*]}"
echo "open wall ms, kmsctl: ${ko[*]}; age -d: ${ao[*]}"
echo "seal CPU ms, kmsctl: ${kcs[*]}; age: ${acs[*]}"
echo "open CPU ms, kmsctl: ${kco[*]}; age -d: ${aco[*]}"
awk -v a="$(median "${ks[@]}")" -v b="$(median "${as[@]}")" -v c="$(median "${ko[@]}")" -v d="$(median "${ao[@]}")" \
    -v e="$(median "${kcs[@]}")" -v f="$(median "${acs[@]}")" -v g="$(median "${kco[@]}")" -v h="$(median "${aco[@]}")" 'BEGIN {
  printf "medians, wall: kmsctl seal %d ms (%.2f GB/s), age %d ms: kmsctl at %.2fx the speed of age\n", a, 1073.741824 / a, b, b / a
  printf "medians, wall: kmsctl open %d ms (%.2f GB/s), age -d %d ms: kmsctl at %.2fx the speed of age\n", c, 1073.741824 / c, d, d / c
  printf "medians, CPU: kmsctl seal %d ms, age %d ms (%.2fx); kmsctl open %d ms, age -d %d ms (%.2fx)\n", e, f, f / e, g, h, h / g
}'
