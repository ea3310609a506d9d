#!/usr/bin/env bash
# Accuracy parity of the layers issue's CNN recipe: test accuracy after EPOCHS epochs over
# SEEDS seeds, PyTorch (scripts/torch_cnn.py) and Stride (benches/cnn_epoch.rs), and the
# difference of the means.
#
#   scripts/cnn_accuracy.sh [SEEDS=5] [EPOCHS=3] [OPT=sgd]
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-5}
EPOCHS=${2:-3}
OPT=${3:-sgd}
export RAYON_NUM_THREADS=2
cargo bench --offline --bench cnn_epoch --no-run >/dev/null 2>&1 || cargo bench --bench cnn_epoch --no-run
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | head -1; }
ta=(); sa=()
for seed in $(seq 0 $((SEEDS - 1))); do
  t=$(python3 scripts/torch_cnn.py --epochs "$EPOCHS" --opt "$OPT" --seed "$seed" 2>/dev/null | grep '^RESULT' | field test_acc)
  s=$(cargo bench --offline --bench cnn_epoch -- --epochs "$EPOCHS" --opt "$OPT" --seed "$seed" 2>/dev/null | grep '^RESULT' | field test_acc)
  ta+=("$t"); sa+=("$s")
  echo "seed $seed: torch $t  stride $s"
done
python3 - "${ta[*]}" "${sa[*]}" <<'PY'
import statistics, sys
t = [float(v) for v in sys.argv[1].split()]; s = [float(v) for v in sys.argv[2].split()]
print(f"mean test accuracy: torch {statistics.mean(t):.4f} (sd {statistics.pstdev(t):.4f})  "
      f"stride {statistics.mean(s):.4f} (sd {statistics.pstdev(s):.4f})  "
      f"difference {100 * (statistics.mean(s) - statistics.mean(t)):+.2f} points")
PY
