#!/usr/bin/env python3
"""Generates the wider corpus of real runs of REAL_RUNS.md ("The wider corpus"): PyTorch runs of
seven model families, constant rates and schedules, batch sizes 1-512, every step's loss and
every epoch's validation loss, labelled by the rule below (fixed before any verdict was looked at).

    pip install torch numpy         # PyPI; CPU is enough (about 10 minutes on one core)
    python3 crates/stride-monitor/corpus/generate.py crates/stride-monitor/fixtures/corpus

Data: Fashion-MNIST from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist; a
5,000-image training subset and 1,000 test images), the GPL-3 text from Debian's base-files
(/usr/share/common-licenses/GPL-3) for the character LSTM, and a seeded synthetic 1-D regression.

Writes runs.csv (one line per run), losses.csv (run,step,loss,lr: every optimizer step) and
val.csv (run,epoch,step,val_loss). Seed 1 for weights and batch order in every run; the runs
of a family differ only in the rate.

Labelling rule (the same as REAL_RUNS.md's for the 82 Stride runs, extended to losses of any
sign and to runs that rise after their minimum; written before any verdict was seen):
  initial  = mean of the first 10 losses of the family's lowest-rate run
  final    = mean of the run's last 10 % of losses (at least 10)
  smin     = minimum of the run's moving average over max(5, 5 % of the steps) losses
  DIVERGING   if any loss is non-finite, final >= initial, or final - smin >= 0.5 (initial - smin)
  otherwise improvement = initial - final, best = the family's largest, lr_best its rate:
  HEALTHY     if improvement >= 0.8 best
  SLOW        if lr < lr_best and improvement < 0.5 best
  INTERMEDIATE_LOW if lr < lr_best (otherwise)
  TOO_HIGH    if lr > lr_best
  and, for a log that carries the validation loss (the per-epoch variant), OVERFIT in addition
  when the run is not DIVERGING, its last validation loss is at least val_min + 0.1 (val_first -
  val_min), the minimum is 3 or more epochs before the end, and the training loss kept falling.
"""

import csv
import gzip
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
FM = "/usr/share/datasets/fashion-mnist"
TEXT = "/usr/share/common-licenses/GPL-3"


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion(n_train=5000, n_test=1000):
    x = idx(f"{FM}/train-images-idx3-ubyte.gz")[:n_train].astype(np.float32) / 255.0
    y = idx(f"{FM}/train-labels-idx1-ubyte.gz")[:n_train].astype(np.int64)
    xt = idx(f"{FM}/t10k-images-idx3-ubyte.gz")[:n_test].astype(np.float32) / 255.0
    yt = idx(f"{FM}/t10k-labels-idx1-ubyte.gz")[:n_test].astype(np.int64)
    return torch.tensor(x), torch.tensor(y), torch.tensor(xt), torch.tensor(yt)


class Mlp(nn.Module):
    def __init__(self, sizes, out):
        super().__init__()
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(sizes[-1], out)

    def forward(self, x):
        return self.head(self.body(x.flatten(1)))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x.unsqueeze(1))), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.fc(x.flatten(1))


class Ae(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 32))
        self.dec = nn.Sequential(nn.ReLU(), nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 784))

    def forward(self, x):
        return self.dec(self.enc(x.flatten(1)))


class CharLstm(nn.Module):
    def __init__(self, vocab, hidden=96):
        super().__init__()
        self.emb = nn.Embedding(vocab, 32)
        self.lstm = nn.LSTM(32, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.out(h)


class GaussMlp(nn.Module):
    """Predicts a mean and a log-variance: the Gaussian NLL goes negative as it fits."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh())
        self.mu = nn.Linear(64, 1)
        self.logvar = nn.Linear(64, 1)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), self.logvar(h)


def gauss_nll(out, y):
    mu, logvar = out
    return (0.5 * (logvar + (y - mu) ** 2 / logvar.exp()) + 0.5 * math.log(2 * math.pi)).mean()


def schedule(kind, base, total):
    """Rate at each step (a pure function of the step, as Stride's schedules are)."""
    if kind == "const":
        return lambda s: base
    if kind == "warmup_cosine":
        w = max(1, total // 10)
        return lambda s: base * (s + 1) / w if s < w else base * 0.5 * (1 + math.cos(math.pi * (s - w) / (total - w)))
    if kind == "onecycle":
        up = int(0.3 * total)
        return lambda s: (
            base / 25 + (base - base / 25) * s / up
            if s < up
            else base * 1e-4 + (base - base * 1e-4) * 0.5 * (1 + math.cos(math.pi * (s - up) / (total - up)))
        )
    if kind == "step_decay":
        return lambda s: base * (0.1 ** (s // max(1, total // 3)))
    if kind == "exp_blowup":
        return lambda s: base * (1.02**s)
    raise ValueError(kind)


def run(spec, data):
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(1)
    model, loss_fn, (x, y, xv, yv) = spec["model"](), spec["loss"], data
    opt_name = spec["opt"]
    lr0 = spec["lr"]
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr0)
    elif opt_name == "momentum":
        opt = torch.optim.SGD(model.parameters(), lr=lr0, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr0)
    bs, epochs = spec["batch"], spec["epochs"]
    steps_per_epoch = math.ceil(len(x) / bs)
    total = steps_per_epoch * epochs
    kind = spec.get("schedule", "const")
    plateau = kind == "plateau"
    lr_at = schedule("const" if plateau else kind, lr0, total)
    lr_now, best_val, bad = lr0, float("inf"), 0
    losses, val = [], []
    step = 0
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(steps_per_epoch):
            b = perm[i * bs : (i + 1) * bs]
            lr = lr_now if plateau else lr_at(step)
            for group in opt.param_groups:
                group["lr"] = lr
            loss = loss_fn(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            v = loss.item()
            losses.append((step, v, lr))
            if not math.isfinite(v):
                return losses, val
        with torch.no_grad():
            vl = loss_fn(model(xv), yv).item()
        val.append((epoch + 1, step, vl))
        if plateau:
            # ReduceLROnPlateau(factor=0.1, patience=1) on the validation loss.
            if vl < best_val * (1 - 1e-4):
                best_val, bad = vl, 0
            else:
                bad += 1
                if bad > 1:
                    lr_now, bad = lr_now * 0.1, 0
    return losses, val


def families():
    fm = fashion()
    x, y, xt, yt = fm
    small = (x[:500], y[:500], xt, yt)
    binary_mask = (y == 0) | (y == 6)
    binary_mask_t = (yt == 0) | (yt == 6)
    binary = (
        x[binary_mask],
        (y[binary_mask] == 6).float().unsqueeze(1),
        xt[binary_mask_t],
        (yt[binary_mask_t] == 6).float().unsqueeze(1),
    )
    text = open(TEXT, encoding="utf-8").read()
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text])
    seq = 64
    n_seq = (len(ids) - 1) // seq
    xs = ids[: n_seq * seq].view(n_seq, seq)
    ys = ids[1 : n_seq * seq + 1].view(n_seq, seq)
    cut = int(0.9 * n_seq)
    lm = (xs[:cut], ys[:cut], xs[cut:], ys[cut:])
    rng = np.random.default_rng(1)
    xr = rng.uniform(-3, 3, size=(2000, 1)).astype(np.float32)
    yr = (np.sin(2 * xr) + 0.1 * xr**2 + rng.normal(0, 0.1 + 0.2 * np.abs(xr) / 3, size=xr.shape)).astype(np.float32)
    reg = (torch.tensor(xr[:1600]), torch.tensor(yr[:1600]), torch.tensor(xr[1600:]), torch.tensor(yr[1600:]))
    ce = nn.CrossEntropyLoss()

    def lm_loss(out, t):
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), t.reshape(-1))

    def ae_sum(out, t):
        # Sum over pixels, mean over the batch: losses in the tens, not ~0.1.
        return F.mse_loss(out, t.flatten(1), reduction="sum") / t.shape[0]

    ae_data = (x, x, xt, xt)
    bce = nn.BCEWithLogitsLoss()
    out = []

    def fam(name, arch, model, loss, data, opt, lrs, batch, epochs, schedule="const"):
        for lr in lrs:
            out.append(
                dict(family=name, arch=arch, model=model, loss=loss, data=data, opt=opt, lr=lr, batch=batch,
                     epochs=epochs, schedule=schedule)
            )

    mlp = lambda: Mlp([784, 128], 10)
    fam("mlp-sgd", "mlp-784-128-10", mlp, ce, fm, "sgd", [1e-3, 1e-2, 1e-1, 1.0, 10.0], 64, 8)
    fam("cnn-adam", "cnn-8-16", Cnn, ce, fm, "adam", [1e-5, 1e-4, 1e-3, 1e-2, 1e-1], 64, 6)
    fam("lstm-adam-cosine", "char-lstm-96", lambda: CharLstm(len(chars)), lm_loss, lm, "adam",
        [1e-4, 1e-3, 1e-2, 1e-1], 16, 12, "warmup_cosine")
    fam("ae-adam-sum", "ae-784-128-32", Ae, ae_sum, ae_data, "adam", [1e-5, 1e-4, 1e-3, 1e-2], 128, 8)
    fam("binary-momentum", "mlp-784-64-1", lambda: Mlp([784, 64], 1), bce, binary, "momentum",
        [1e-3, 1e-2, 1e-1, 1.0, 10.0], 32, 20)
    fam("gauss-nll-adam", "mlp-1-64-64-2", GaussMlp, gauss_nll, reg, "adam", [1e-4, 1e-3, 1e-2, 1e-1], 16, 8)
    fam("mlp-onecycle", "mlp-784-128-10", mlp, ce, fm, "sgd", [0.1, 1.0, 10.0], 64, 8, "onecycle")
    fam("mlp-stepdecay", "mlp-784-128-10", mlp, ce, fm, "momentum", [1e-3, 1e-2, 1e-1, 1.0], 64, 8, "step_decay")
    fam("mlp-plateau", "mlp-784-128-10", mlp, ce, fm, "sgd", [1e-2, 1e-1], 64, 10, "plateau")
    fam("mlp-expblowup", "mlp-784-128-10", mlp, ce, fm, "sgd", [1e-3, 1e-2], 64, 8, "exp_blowup")
    fam("mlp-overfit", "mlp-784-512-10", lambda: Mlp([784, 512], 10), ce, small, "adam", [1e-4, 1e-3, 1e-2], 32, 40)
    for bs, epochs in [(1, 1), (8, 2), (32, 4), (128, 10), (512, 40)]:
        fam(f"mlp-batch{bs}", "mlp-784-128-10", mlp, ce, (x[:2000], y[:2000], xt, yt), "sgd", [0.01, 0.1], bs, epochs)
    return out


def label_family(runs):
    for r in runs:
        r["overfit"] = False
    lowest = min(runs, key=lambda r: r["lr"])
    initial = float(np.mean([l for _, l, _ in lowest["losses"][:10]]))
    for r in runs:
        ls = np.array([l for _, l, _ in r["losses"]])
        r["initial"] = initial
        if not np.all(np.isfinite(ls)):
            r["label"] = "DIVERGING"
            continue
        k = max(10, len(ls) // 10)
        final = float(ls[-k:].mean())
        w = max(5, len(ls) // 20)
        smin = float(np.convolve(ls, np.ones(w) / w, mode="valid").min())
        r["final"] = final
        if final >= initial or final - smin >= 0.5 * (initial - smin):
            r["label"] = "DIVERGING"
        else:
            r["improvement"] = initial - final
    ok = [r for r in runs if "improvement" in r]
    if not ok:
        return
    best = max(ok, key=lambda r: r["improvement"])
    for r in ok:
        if r["improvement"] >= 0.8 * best["improvement"]:
            r["label"] = "HEALTHY"
        elif r["lr"] < best["lr"]:
            r["label"] = "SLOW" if r["improvement"] < 0.5 * best["improvement"] else "INTERMEDIATE_LOW"
        else:
            r["label"] = "TOO_HIGH"
    for r in runs:
        v = [vl for _, _, vl in r["val"]]
        r["overfit"] = False
        if r["label"] != "DIVERGING" and len(v) >= 4 and all(math.isfinite(t) for t in v):
            j = int(np.argmin(v))
            train_at = np.mean([l for s, l, _ in r["losses"] if r["val"][j][1] - 20 < s <= r["val"][j][1]])
            r["overfit"] = (
                v[-1] >= v[j] + 0.1 * (v[0] - v[j]) and j <= len(v) - 4 and r["final"] < train_at
            )


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "fixtures/corpus"
    os.makedirs(out_dir, exist_ok=True)
    specs = families()
    t0 = time.time()
    by_family = {}
    for s in specs:
        t = time.time()
        s["losses"], s["val"] = run(s, s["data"])
        s["id"] = f"{s['family']}-{s['lr']:g}"
        by_family.setdefault(s["family"], []).append(s)
        print(f"{s['id']}: {len(s['losses'])} steps, last {s['losses'][-1][1]:.4g}, {time.time() - t:.1f}s", flush=True)
    for runs in by_family.values():
        label_family(runs)
    with open(f"{out_dir}/runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "family", "framework", "arch", "optimizer", "schedule", "batch", "lr", "steps", "epochs",
                    "label", "overfit"])
        for s in specs:
            w.writerow([s["id"], s["family"], "pytorch", s["arch"], s["opt"], s["schedule"], s["batch"], f"{s['lr']:g}",
                        len(s["losses"]), len(s["val"]), s["label"], str(s["overfit"]).lower()])
    with open(f"{out_dir}/losses.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "step", "loss", "lr"])
        for s in specs:
            for step, l, lr in s["losses"]:
                w.writerow([s["id"], step, f"{l:.6g}", f"{lr:.6g}"])
    with open(f"{out_dir}/val.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "epoch", "step", "val_loss"])
        for s in specs:
            for e, step, vl in s["val"]:
                w.writerow([s["id"], e, step, f"{vl:.6g}"])
    print(f"{len(specs)} runs in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
