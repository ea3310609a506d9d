#!/usr/bin/env bash
# Runs the layers issue's CNN workload alternately on PyTorch and on Stride, ROUNDS times
# per optimizer, and prints each pair's epoch-time ratio and the median ratio.
#
#   pip install torch numpy          # once; CPU wheels are enough
#   scripts/compare_cnn.sh [ROUNDS=3] [EPOCHS=3] [OPTS="sgd adam"]
#
# Both sides use 2 threads; the median epoch leaves the first out.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
EPOCHS=${2:-3}
OPTS=${3:-"sgd adam"}
export RAYON_NUM_THREADS=2
cargo bench --offline --bench cnn_epoch --no-run >/dev/null 2>&1 || cargo bench --bench cnn_epoch --no-run
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | head -1; }
for opt in $OPTS; do
  ratios=()
  for round in $(seq 1 "$ROUNDS"); do
    t=$(python3 scripts/torch_cnn.py --epochs "$EPOCHS" --opt "$opt" --threads 2 2>/dev/null | grep '^RESULT')
    s=$(cargo bench --offline --bench cnn_epoch -- --epochs "$EPOCHS" --opt "$opt" 2>/dev/null | grep '^RESULT')
    ts=$(echo "$t" | field median_epoch_s); ss=$(echo "$s" | field median_epoch_s)
    ta=$(echo "$t" | field test_acc); sa=$(echo "$s" | field test_acc)
    r=$(python3 -c "print(f'{$ss/$ts:.3f}')")
    ratios+=("$r")
    echo "$opt round $round: torch ${ts}s (acc $ta)  stride ${ss}s (acc $sa)  ratio $r"
  done
  python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f'$opt: median ratio stride/torch {statistics.median(v):.3f} over {len(v)} pairs (min {min(v):.3f}, max {max(v):.3f})')" "${ratios[@]}"
done
