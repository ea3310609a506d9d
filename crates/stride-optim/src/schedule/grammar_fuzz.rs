//! A deterministic property test: no input makes `parse_schedule`, or the
//! scheduler it returns, panic.

use super::*;

/// A tiny deterministic generator (xorshift64*), so the garbage is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "constant",
    "step",
    "multistep",
    "exp",
    "cosine",
    "restarts",
    "warmup",
    "poly",
    "invtime",
    "onecycle",
    "cyclic",
    "wsd",
    "plateau",
    "then",
    "for",
    "per",
    "epoch",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "*",
    " ",
    "gamma",
    "every",
    "at",
    "min",
    "max",
    "total",
    "t0",
    "mult",
    "pct",
    "mode",
    "anneal",
    "linear",
    "decay",
    "decay_steps",
    "shape",
    "sqrt",
    "three_phase",
    "momentum",
    "triangular2",
    "exp_range",
    "patience",
    "factor",
    "min_lr",
    "true",
    "false",
    "0",
    "1",
    "2",
    "-1",
    "0.5",
    "1e308",
    "1e-3",
    "2000",
    "9007199254740992",
    "18446744073709551616",
    "nan",
    "inf",
    ".",
    "é",
    "\u{0}",
    "→",
    "\n",
    "+.5e+3",
];

/// Calls, their required argument, and some optional keys, for specs that
/// are well-formed but may hold odd values.
const CALL_KEYS: &[(&str, &str, &[&str])] = &[
    ("constant", "", &["lr"]),
    ("step", "every=10", &["gamma"]),
    ("multistep", "at=[2, 9]", &["gamma"]),
    ("exp", "gamma=0.9", &["lambda"]),
    ("cosine", "12", &["min"]),
    ("restarts", "t0=4", &["mult", "min"]),
    ("warmup", "", &["total", "start", "end"]),
    ("poly", "", &["total", "power"]),
    ("invtime", "k=0.1", &[]),
    (
        "onecycle",
        "total=40",
        &["max", "pct", "anneal", "three_phase", "div", "momentum"],
    ),
    ("cyclic", "max=0.5", &["base", "up", "down", "mode", "gamma"]),
    ("wsd", "30", &["warmup", "decay", "decay_steps", "shape", "min"]),
    ("linear", "total=25", &["warmup", "min"]),
    ("plateau", "", &["patience", "factor", "mode", "cooldown", "min_lr"]),
];

const VALUES: &[&str] = &[
    "0",
    "1",
    "3",
    "7",
    "0.5",
    "0.1",
    "0.9",
    "2000",
    "1e-3",
    "true",
    "false",
    "cos",
    "linear",
    "sqrt",
    "triangular2",
    "exp_range",
    "max",
    "[1, 5]",
    "[]",
    "9007199254740992",
    "-2",
];

/// A well-formed spec of 1 to 3 parts with random optional keys and values.
fn structured(rng: &mut Rng) -> String {
    let count = 1 + rng.below(3);
    let mut parts = Vec::new();
    for part in 0..count {
        let mut terms = Vec::new();
        for _ in 0..1 + usize::from(rng.below(4) == 0) {
            let (name, required, keys) = CALL_KEYS[rng.below(CALL_KEYS.len())];
            let mut args: Vec<String> = (!required.is_empty())
                .then(|| required.to_string())
                .into_iter()
                .collect();
            if !keys.is_empty() {
                let key = keys[rng.below(keys.len())];
                args.extend((rng.below(3) > 0).then(|| format!("{key}={}", VALUES[rng.below(VALUES.len())])));
            }
            terms.push(format!("{name}({})", args.join(", ")));
        }
        let length = if part + 1 < count {
            format!(" for {}", 1 + rng.below(20))
        } else {
            String::new()
        };
        parts.push(terms.join(" * ") + &length);
    }
    parts.join(" then ")
}

/// Applies `f` to `n` deterministic random specs: token soups, valid specs
/// with characters deleted, inserted or replaced, and well-formed specs with
/// random values.
fn for_garbage(n: usize, mut f: impl FnMut(&str)) {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let valid = [
        "warmup(500) then cosine(9500, min=1e-5)",
        "onecycle(total=50, max=0.1, three_phase=true) then constant for 3 then plateau(patience=1)",
        "cyclic(base=1e-3, max=0.1, up=20, mode=exp_range, gamma=0.99) * step(every=7)",
        "multistep(at=[3, 5, 5], gamma=0.5) for 9 then restarts(t0=2, mult=3) per epoch",
        "wsd(40, warmup=5, decay=0.25, shape=linear, min=0.01) then linear(20, warmup=2)",
    ];
    for i in 0..n {
        let spec: String = if i % 3 == 0 {
            (0..rng.below(12)).map(|_| PIECES[rng.below(PIECES.len())]).collect()
        } else if i % 3 == 1 {
            structured(&mut rng)
        } else {
            let mut chars: Vec<char> = valid[rng.below(valid.len())].chars().collect();
            for _ in 0..1 + rng.below(3) {
                // `at` indexes an existing char (the specs are never emptied by 3 edits).
                let at = rng.below(chars.len());
                match rng.below(4) {
                    0 => {
                        chars.remove(at);
                    }
                    1 => chars.insert(at, char::from_u32(rng.below(0x3000) as u32).unwrap_or('?')),
                    2 => chars[at] = (b' ' + rng.below(95) as u8) as char,
                    _ => chars.insert(at, ')'),
                }
            }
            chars.into_iter().collect()
        };
        f(&spec);
    }
}

#[test]
fn garbage_never_panics() {
    let (mut ok, mut errors) = (0, 0);
    for_garbage(900, |spec| match parse_schedule(spec, 0.1) {
        Ok(mut s) => {
            ok += 1;
            for t in [0, 1, 2, 17, 1000, u64::MAX / 2, u64::MAX] {
                let _ = (s.lr(t), s.momentum(t));
                s.observe_metric(t, 1.0 / (t as f64 + 1.0));
            }
            let points = preview(&s, 64);
            let _ = (render_ascii_plot(&points, 30, 6, true), to_csv(&points));
        }
        Err(e) => {
            errors += 1;
            // Every error renders, with its caret line, without panicking.
            let text = e.to_string();
            assert!(!text.is_empty(), "{spec:?}");
            if matches!(e, ScheduleError::Parse { .. }) {
                assert!(text.contains('^'), "{spec:?}: {text}");
            }
        }
    });
    // Both paths must be exercised for the test to mean anything.
    assert!(ok > 50 && errors > 200, "ok {ok}, errors {errors}");
}
