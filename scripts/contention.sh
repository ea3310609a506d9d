#!/usr/bin/env bash
# Two trainings at once on a small machine: each should take at most 2.5x its solo time.
# Usage: scripts/contention.sh [ROUNDS] [EXTRA FLAGS...]; prints solo and paired wall times
# of `stride train --dataset fashion-mnist --epochs 2 --no-monitor`, alternating, and the
# ratio of each pair's slower run to the median solo run.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
cargo build -q --release --bin stride
bin=target/release/stride
job() { "$bin" train --dataset fashion-mnist --epochs 2 --no-monitor "$@" > /dev/null 2>&1; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
solos=()
pairs=()
for r in $(seq "$rounds"); do
    solos+=("$(secs job "$@")")
    t0=$(date +%s.%N)
    ( a=$(secs job "$@"); echo "$a" > /tmp/contention.a ) &
    ( b=$(secs job "$@"); echo "$b" > /tmp/contention.b ) &
    wait
    a=$(cat /tmp/contention.a); b=$(cat /tmp/contention.b)
    pairs+=("$(printf '%s\n%s\n' "$a" "$b" | sort -g | tail -1)")
    echo "round $r: solo ${solos[-1]} s, pair $a s / $b s"
done
solo=$(printf '%s\n' "${solos[@]}" | sort -g | sed -n "$(( (rounds + 1) / 2 ))p")
for p in "${pairs[@]}"; do
    echo "pair/solo: $(echo "scale=2; $p / $solo" | bc)"
done
