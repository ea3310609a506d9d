#!/usr/bin/env python3
"""Adds Stride's own runs with schedules and batch sizes to the wider corpus (REAL_RUNS.md):
`stride train` on Fashion-MNIST (MLP 784-128-10, SGD, seed 1, 2 epochs) under warmup (10 % of
the steps) then cosine, at rates 0.01, 0.1, 1 and 10 and batch sizes 32, 128 and 512, each read
back from its own `--metrics` log and labelled by the rule of generate.py.

    cargo build --release --bin stride
    python3 crates/stride-monitor/corpus/stride_runs.py target/release/stride crates/stride-monitor/fixtures/corpus
"""

import csv
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from generate import label_family  # noqa: E402  (the one labelling rule)


def metrics(path):
    steps, val = [], []
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["kind"] == "step":
                steps.append((int(row["step"]), float(row["loss"]), float(row["lr"])))
            elif row["test_loss"]:
                val.append((int(row["epoch"]), int(row["step"]), float(row["test_loss"])))
    return steps, val


def main():
    binary, out = sys.argv[1], sys.argv[2]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in [32, 128, 512]:
            total = 2 * math.ceil(60000 / batch)
            warm = total // 10
            for lr in [0.01, 0.1, 1.0, 10.0]:
                path = f"{tmp}/m.csv"
                cmd = [binary, "train", "--dataset", "fashion-mnist", "--epochs", "2", "--seed", "1",
                       "--batch-size", str(batch), "--lr", str(lr), "--metrics", path,
                       "--schedule", f"warmup({warm}) then cosine({total - warm})"]
                subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                losses, val = metrics(path)
                runs.append(dict(id=f"stride-cosine-b{batch}-{lr:g}", family=f"stride-cosine-b{batch}",
                                 arch="mlp-784-128-10", opt="sgd", schedule="warmup_cosine", batch=batch, lr=lr,
                                 losses=losses, val=val))
                print(runs[-1]["id"], len(losses), losses[-1][1], flush=True)
    families = {}
    for r in runs:
        families.setdefault(r["family"], []).append(r)
    for members in families.values():
        label_family(members)
    with open(f"{out}/runs.csv", "a", newline="") as f:
        w = csv.writer(f)
        for s in runs:
            w.writerow([s["id"], s["family"], "stride", s["arch"], s["opt"], s["schedule"], s["batch"], f"{s['lr']:g}",
                        len(s["losses"]), len(s["val"]), s["label"], str(s["overfit"]).lower()])
    with open(f"{out}/losses.csv", "a", newline="") as f:
        w = csv.writer(f)
        for s in runs:
            for step, l, lr in s["losses"]:
                w.writerow([s["id"], step, f"{l:.6g}", f"{lr:.6g}"])
    with open(f"{out}/val.csv", "a", newline="") as f:
        w = csv.writer(f)
        for s in runs:
            for e, step, vl in s["val"]:
                w.writerow([s["id"], e, step, f"{vl:.6g}"])


if __name__ == "__main__":
    main()
