# PyTorch reference for the CNN workload of the layers issue (a copy of the project's
# shared/bench/torch_cnn.py with a seed, an Adam switch and the test accuracy): conv 1->8 5x5,
# ReLU, maxpool 2, conv 8->16 5x5, ReLU, maxpool 2, linear 256->10; Fashion-MNIST, batch 128,
# 2 threads, SGD lr 0.05 or Adam lr 1e-3.
# Usage: python3 scripts/torch_cnn.py [--epochs 3] [--opt sgd|adam] [--seed 0]
# Prints RESULT median_epoch_s=... final_train_loss=... test_acc=...
import argparse, gzip, os, statistics, time
import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument('--epochs', type=int, default=3)
p.add_argument('--opt', default='sgd')
p.add_argument('--seed', type=int, default=0)
p.add_argument('--threads', type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)


def idx(path):
    d = gzip.open(path).read()
    return np.frombuffer(d, dtype=np.uint8, offset=16 if d[3] == 3 else 8)


D = os.environ.get('FASHION_DIR', '/usr/share/datasets/fashion-mnist/')
x = torch.tensor(idx(D + 'train-images-idx3-ubyte.gz').reshape(-1, 1, 28, 28).astype(np.float32) / 255.)
y = torch.tensor(idx(D + 'train-labels-idx1-ubyte.gz').astype(np.int64))
tx = torch.tensor(idx(D + 't10k-images-idx3-ubyte.gz').reshape(-1, 1, 28, 28).astype(np.float32) / 255.)
ty = torch.tensor(idx(D + 't10k-labels-idx1-ubyte.gz').astype(np.int64))
nn = torch.nn
m = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Flatten(), nn.Linear(256, 10))
opt = torch.optim.Adam(m.parameters(), lr=1e-3) if a.opt == 'adam' else torch.optim.SGD(m.parameters(), lr=0.05)
times = []
for ep in range(a.epochs):
    t = time.time(); perm = torch.randperm(len(x)); tot = 0.0
    for i in range(0, len(x), 128):
        b = perm[i:i + 128]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(m(x[b]), y[b])
        loss.backward()
        opt.step()
        tot += loss.item()
    times.append(time.time() - t)
    print(ep, tot / 469, times[-1])
with torch.no_grad():
    acc = (m(tx).argmax(1) == ty).float().mean().item()
med = statistics.median(times[1:] if len(times) > 1 else times)
print(f'RESULT median_epoch_s={med:.4f} final_train_loss={tot / 469:.4f} test_acc={acc:.4f}')
