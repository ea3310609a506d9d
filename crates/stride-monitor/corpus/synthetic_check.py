#!/usr/bin/env python3
"""Synthetic check of `stride diagnose`'s rules against an earlier build of them (REAL_RUNS.md,
"Public logs", the synthetic check). No labels are fitted to these logs: it only shows that a
change of rules does not trade one error for another.

    git worktree add /tmp/old <commit>
    (cd /tmp/old && CARGO_TARGET_DIR=/tmp/oldtarget cargo build --release -p stride-monitor --example diagnose_log)
    cargo build --release -p stride-monitor --example diagnose_log
    python3 crates/stride-monitor/corpus/synthetic_check.py /tmp/oldtarget/release/examples/diagnose_log \
        target/release/examples/diagnose_log [count] [seed]

Logs: healthy exponential and power-law curves, and runs that end in NaN, rise from half-way,
rise after 60 % of the run, or blow up to a plateau; 8-2000 points logged every 1, 10 or 100
steps; Gaussian or log-normal noise of 1-30 %; scales 1, 10 and 100; with or without an lr
column (constant, or cosine).
"""
import collections, math, os, random, subprocess, sys, tempfile

OK = {'healthy': {'healthy', 'plateau'}}
for k in ('nan', 'rise', 'blowup_plateau', 'rise_after_min'):
    OK[k] = {'diverging', 'exploded'}


def logs(count, seed):
    random.seed(seed)
    for rep in range(count):
        n = random.choice([8, 12, 20, 40, 100, 400, 2000])
        every = random.choice([1, 10, 100])
        noise = random.choice([0.01, 0.03, 0.08, 0.15, 0.3])
        tail = random.choice(['gauss', 'lognormal'])
        scale = random.choice([1, 10, 100])
        withlr = random.random() < 0.5
        sched = random.choice(['const', 'cosine'])
        kind = random.choice(['healthy', 'healthy', 'healthy', 'nan', 'rise', 'blowup_plateau', 'rise_after_min'])
        T, pts = n * every, []
        for i in range(n):
            t = (i + 1) * every
            lr = 0.1 if sched == 'const' else 0.1 * 0.5 * (1 + math.cos(math.pi * t / T)) + 1e-4
            base = 2.0 * math.exp(-3 * t / T) + 0.3 if random.random() < 0.5 else 2.0 * (1 + 10 * t / T) ** -0.7 + 0.2
            if kind == 'rise' and t > 0.5 * T:
                base *= 1 + 3 * (t / T - 0.5)
            if kind == 'rise_after_min' and t > 0.6 * T:
                base += 1.2 * (t / T - 0.6)
            if kind == 'blowup_plateau' and t > 0.3 * T:
                base = 25.0
            e = random.gauss(0, 1)
            v = base * (1 + noise * e) if tail == 'gauss' else base * math.exp(noise * e)
            pts.append((t, v * scale, lr if withlr else None))
        if kind == 'nan':
            pts = pts[:max(2, int(0.7 * n))]
            for j in range(3):
                pts.append((pts[-1][0] + every, pts[-1][1] * 3 ** (j + 1), pts[-1][2]))
            pts.append((pts[-1][0] + every, float('nan'), pts[-1][2]))
        head = 'step,loss,lr\n' if withlr else 'step,loss\n'
        body = ''.join(f'{s},{l}' + (f',{r}' if r is not None else '') + '\n' for s, l, r in pts)
        yield kind, head + body


def verdict(binary, path):
    out = subprocess.run([binary, path], capture_output=True, text=True).stdout
    line = next((l for l in out.splitlines() if l.startswith('verdict:')), 'verdict: none')
    return line.split()[1]


def main():
    old, new = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 23
    tally = collections.Counter()
    with tempfile.TemporaryDirectory() as d:
        for i, (kind, text) in enumerate(logs(count, seed)):
            path = os.path.join(d, f'{i}.csv')
            open(path, 'w').write(text)
            for name, b in (('old', old), ('new', new)):
                v = verdict(b, path)
                tally[(kind, name)] += v in OK[kind]
                tally[(kind, name, 'healthy')] += kind != 'healthy' and v == 'healthy'
            tally[(kind, 'n')] += 1
    for kind in OK:
        print(f"{kind:15} {tally[(kind, 'n')]:4}  acceptable: old {tally[(kind, 'old')]:4}  new {tally[(kind, 'new')]:4}")
    for name in ('old', 'new'):
        print(f"diverged called healthy ({name}): {sum(tally[(k, name, 'healthy')] for k in OK)}")


if __name__ == '__main__':
    main()
