#!/usr/bin/env python3
"""Real per-step losses for the live monitor's acceptance checks of issue 14 (REAL_RUNS.md,
"Live cases"): the MLP 784-128-10 of `stride train` (ReLU, SGD, PyTorch's default init) on the
full Fashion-MNIST training set (Debian's dataset-fashion-mnist), seed 1.

    python3 crates/stride-monitor/corpus/live_cases.py crates/stride-monitor/fixtures/live_cases

* noise-b{8,16,32,64}.csv: SGD 0.1, one epoch at batch 8, 16, 32, 64 (the run is healthy: loss
  2.3 -> ~0.5; the acceptance asks for no alarm after step 50 and at most 5 state changes).
* dead-warmup-cosine.csv: lr 10 under warmup(300) then cosine(330), batch 128 (a dead network).
* dead-onecycle.csv: onecycle(total=630, max=10).
* exp-gamma2.csv: lr 0.1 doubled every step (exp(gamma=2)) until the loss is non-finite.
* cosine-min10.csv: cosine from 0.1 up to a minimum of 10 over 100 steps, then 10.
Each file: step,loss,lr.
"""

import gzip
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(1)
FM = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def train(x, y, batch, lr_at, steps, out):
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=lr_at(0))
    loss_fn = nn.CrossEntropyLoss()
    rows = []
    step = 0
    while step < steps:
        perm = torch.randperm(len(x), generator=g)
        for i in range(len(x) // batch):
            if step >= steps:
                break
            lr = lr_at(step)
            for group in opt.param_groups:
                group["lr"] = lr
            b = perm[i * batch : (i + 1) * batch]
            loss = loss_fn(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            rows.append((step, loss.item(), lr))
            if not math.isfinite(rows[-1][1]):
                step = steps
                break
    with open(out, "w") as f:
        f.write("step,loss,lr\n")
        for s, l, lr in rows:
            f.write(f"{s},{l:.6g},{lr:.6g}\n")
    print(out, len(rows), rows[-1][1], flush=True)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "fixtures/live_cases"
    os.makedirs(out, exist_ok=True)
    x = torch.tensor(idx(f"{FM}/train-images-idx3-ubyte.gz").astype(np.float32) / 255.0)
    y = torch.tensor(idx(f"{FM}/train-labels-idx1-ubyte.gz").astype(np.int64))
    for b in [8, 16, 32, 64]:
        train(x, y, b, lambda s: 0.1, len(x) // b, f"{out}/noise-b{b}.csv")

    def warmup_cosine(s, w=300, c=330, peak=10.0):
        return peak * (s + 1) / w if s < w else peak * 0.5 * (1 + math.cos(math.pi * min(s - w, c) / c))

    def onecycle(s, total=630, peak=10.0):
        up = int(0.3 * total)
        if s < up:
            return peak / 25 + (peak - peak / 25) * s / up
        return peak / 25e4 + (peak - peak / 25e4) * 0.5 * (1 + math.cos(math.pi * (s - up) / (total - up)))

    train(x, y, 128, warmup_cosine, 630, f"{out}/dead-warmup-cosine.csv")
    train(x, y, 128, onecycle, 630, f"{out}/dead-onecycle.csv")
    train(x, y, 128, lambda s: 0.1 * 2.0**s, 630, f"{out}/exp-gamma2.csv")
    train(x, y, 128, lambda s: 0.1 + (10 - 0.1) * 0.5 * (1 - math.cos(math.pi * min(s, 100) / 100)), 630,
          f"{out}/cosine-min10.csv")


if __name__ == "__main__":
    main()
