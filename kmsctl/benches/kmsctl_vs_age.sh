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

now() { date +%s%N; }
ms() { local t; t=$(now); "$@" >/dev/null 2>&1; echo $((($(now) - t) / 1000000)); }
declare -a ks ko as ao
for _ in $(seq "$rounds"); do
  ks+=("$(ms sh -c "'$k' seal --local-kek '$work/kek' --key-id bench --in - --out - < '$work/plain' > /dev/null")")
  as+=("$(ms sh -c "age -r '$recipient' < '$work/plain' > /dev/null")")
  ko+=("$(ms sh -c "'$k' open --local-kek '$work/kek' --in - --out - < '$work/plain.kms' > /dev/null")")
  ao+=("$(ms sh -c "age -d -i '$work/id' < '$work/plain.age' > /dev/null")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mks=$(median "${ks[@]}"); mas=$(median "${as[@]}"); mko=$(median "${ko[@]}"); mao=$(median "${ao[@]}")
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "seal ms, kmsctl: ${ks[*]}; age: ${as[*]}"
echo "open ms, kmsctl: ${ko[*]}; age: ${ao[*]}"
awk -v a="$mks" -v b="$mas" -v c="$mko" -v d="$mao" 'BEGIN {
  printf "medians: kmsctl seal %d ms (%.2f GB/s), age %d ms; kmsctl seal / age speed %.2fx\n", a, 1073.741824 / a, b, b / a
  printf "medians: kmsctl open %d ms (%.2f GB/s), age -d %d ms; kmsctl open / age speed %.2fx\n", c, 1073.741824 / c, d, d / c
}'
