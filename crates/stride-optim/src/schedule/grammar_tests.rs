//! Tests of `parse_schedule`: what specs mean and where errors point.

use super::test_util::assert_close;
use super::*;

fn parse(spec: &str) -> Scheduler {
    parse_schedule(spec, 0.1).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn lr(spec: &str, t: u64) -> f64 {
    parse(spec).lr(t)
}

#[test]
fn every_documented_example_parses() {
    for spec in [
        "constant",
        "step(gamma=0.5, every=1000)",
        "multistep(gamma=0.1, at=[30, 80]) per epoch",
        "exp(lambda=1e-3)",
        "exp(gamma=0.999)",
        "cosine(10000, min=1e-5)",
        "restarts(t0=100, mult=2)",
        "warmup(500)",
        "poly(total=1000, power=2)",
        "invtime(k=1e-3)",
        "onecycle(total=5000, max=0.1)",
        "cyclic(base=1e-3, max=0.1, up=2000, mode=triangular2)",
        "plateau(patience=2, factor=0.5)",
        "warmup(500) then cosine(9500)",
        "constant for 1000 then cosine(9000)",
        "warmup(500, start=0.01) * exp(gamma=0.9995)",
        "warmup(5) then plateau(patience=2, factor=0.5)",
        "onecycle(total=5000, max=0.1, anneal=linear, three_phase=true)",
        "wsd(10000, warmup=500)",
        "wsd(10000, warmup=500, decay=0.2, shape=sqrt)",
        "linear(10000, warmup=500)",
    ] {
        parse(spec);
    }
}

#[test]
fn closed_forms_through_the_grammar() {
    // lr = 0.1 * 0.5^floor(t / 1000)
    assert_close(lr("step(gamma=0.5, every=1000)", 2500), 0.025, 1e-12, 0.0, "step");
    assert_close(lr("step(1000)", 1000), 0.01, 1e-12, 0.0, "step default gamma 0.1");
    // 0.1 * 0.1^2 after both milestones
    assert_close(
        lr("multistep(gamma=0.1, at=[30,80])", 80),
        0.001,
        1e-12,
        0.0,
        "multistep",
    );
    assert_close(lr("multistep(at=30)", 30), 0.01, 1e-12, 0.0, "multistep single");
    // 0.1 * e^-1
    assert_close(
        lr("exp(lambda=1e-3)", 1000),
        0.1 * (-1f64).exp(),
        1e-12,
        0.0,
        "exp lambda",
    );
    assert_close(lr("exp(gamma=0.5)", 3), 0.0125, 1e-12, 0.0, "exp gamma");
    // half-way down the cosine: (0.1 + 1e-5) / 2
    assert_close(
        lr("cosine(10000, min=1e-5)", 5000),
        (0.1 + 1e-5) / 2.0,
        1e-12,
        0.0,
        "cosine",
    );
    // warm-up defaults to PyTorch's start factor 1/3 and 5 steps
    assert_close(lr("warmup", 0), 0.1 / 3.0, 1e-12, 0.0, "warmup");
    assert_close(
        lr("warmup(500)", 250),
        0.1 * (1.0 / 3.0 + (2.0 / 3.0) * 0.5),
        1e-12,
        0.0,
        "warmup",
    );
    assert_close(lr("poly(total=1000, power=2)", 500), 0.025, 1e-12, 0.0, "poly");
    assert_close(lr("invtime(k=1e-3)", 1000), 0.05, 1e-12, 0.0, "invtime");
    assert_close(lr("constant(0.3)", 7), 0.3, 0.0, 0.0, "constant lr");
    // one-cycle peaks at --lr when max is not given
    assert_close(lr("onecycle(100)", 29), 0.1, 1e-12, 0.0, "onecycle peak");
    assert_eq!(parse("onecycle(100, momentum=false)").momentum(0), None);
    assert_close(
        lr("cyclic(max=1, up=10)", 10),
        1.0,
        1e-12,
        0.0,
        "cyclic base defaults to --lr",
    );
    assert_close(lr("restarts(10)", 10), 0.1, 1e-12, 0.0, "restart");
}

#[test]
fn wsd_and_linear_through_the_grammar() {
    // wsd(100): no warm-up, cooldown over the last 0.2 * 100 = 20 steps, 1-sqrt by default.
    let table = [
        (0, 0.1),
        (79, 0.1),
        (80, 0.1),
        (85, 0.1 * (1.0 - 0.25f64.sqrt())),
        (99, 0.1 * (1.0 - 0.95f64.sqrt())),
        (100, 0.0),
    ];
    for (t, want) in table {
        assert_close(lr("wsd(100)", t), want, 1e-12, 1e-15, &format!("wsd(100) at {t}"));
    }
    // warm-up 10 from 0, decay_steps 30 linear to min 0.01: 0.05 at 5, 0.1 until 70, then down.
    let spec = "wsd(100, warmup=10, decay_steps=30, shape=linear, min=0.01)";
    for (t, want) in [
        (0, 0.01),
        (5, 0.055),
        (10, 0.1),
        (69, 0.1),
        (70, 0.1),
        (85, 0.055),
        (100, 0.01),
    ] {
        assert_close(lr(spec, t), want, 1e-12, 1e-15, &format!("{spec} at {t}"));
    }
    // linear(40, warmup=8): 0.05 at 4, peak at 8, then 0.1 * (40 - t) / 32.
    for (t, want) in [(0, 0.0), (4, 0.05), (8, 0.1), (24, 0.05), (39, 0.1 / 32.0), (40, 0.0)] {
        assert_close(
            lr("linear(40, warmup=8)", t),
            want,
            1e-12,
            1e-15,
            &format!("linear at {t}"),
        );
    }
    // The natural length is total, so `then` follows at once.
    let s = parse("wsd(50, decay=0.1) then constant(0.001)");
    assert_close(s.lr(49), 0.1 * (1.0 - 0.8f64.sqrt()), 1e-12, 0.0, "last cooldown step");
    assert_close(s.lr(50), 0.001, 0.0, 0.0, "after wsd");
    // In a product the rates are fractions of --lr.
    assert_close(
        lr("wsd(10, min=0.5) * constant", 10),
        0.05,
        1e-12,
        0.0,
        "min in a product",
    );
}

#[test]
fn then_shifts_later_parts() {
    let s = parse("constant for 1000 then cosine(9000)");
    assert_close(s.lr(999), 0.1, 0.0, 0.0, "constant part");
    assert_close(s.lr(1000), 0.1, 1e-12, 0.0, "cosine step 0");
    assert_close(s.lr(5500), 0.05, 1e-12, 0.0, "cosine half-way");
    let s = parse("warmup(500, start=0.01) then cosine(9500) then constant(1e-6)");
    assert_close(s.lr(0), 0.001, 1e-12, 0.0, "warmup start");
    assert_close(s.lr(500), 0.1, 1e-12, 0.0, "cosine start");
    assert_close(s.lr(10_000), 1e-6, 0.0, 0.0, "tail");
    // A product lasts as long as its longest term.
    let s = parse("warmup(4, start=0.5) * cosine(8) then constant(0.5)");
    assert_close(
        s.lr(7),
        0.1 * (1.0 + (std::f64::consts::PI * 7.0 / 8.0).cos()) / 2.0,
        1e-12,
        0.0,
        "product",
    );
    assert_close(s.lr(8), 0.5, 0.0, 0.0, "after the product");
}

#[test]
fn units_and_plateau_placement() {
    assert_eq!(parse("cosine(100)").unit, ScheduleUnit::Step);
    assert_eq!(parse("step(30) per epoch").unit, ScheduleUnit::Epoch);
    let s = parse("warmup(5) then plateau(patience=2, factor=0.5)");
    assert_eq!((s.unit, s.plateau_after), (ScheduleUnit::Epoch, 5));
    assert_eq!(parse("plateau per step").unit, ScheduleUnit::Step);
    let s = parse("plateau");
    assert_eq!(s.plateau.as_ref().map(|p| p.config), Some(PlateauConfig::default()));
    assert_eq!(s.plateau_after, 0);
}

#[test]
fn u1_through_the_grammar() {
    let mut s = parse("plateau(factor=0.1, patience=2, cooldown=1, min_lr=1e-4, threshold=0.01, threshold_mode=rel)");
    for (epoch, (&m, &want)) in test_util::U1_METRICS.iter().zip(&test_util::U1_LRS).enumerate() {
        s.observe_metric(epoch as u64, m);
        assert_close(s.lr(epoch as u64 + 1), want, 1e-12, 0.0, &format!("epoch {epoch}"));
    }
}

#[test]
fn errors_point_at_the_token() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "cosin(100)",
            0,
            "unknown schedule `cosin`; expected one of constant, step",
        ),
        (
            "step(gama=0.5, every=1000)",
            5,
            "unknown parameter `gama` for `step`; expected one of every, gamma",
        ),
        ("step(gamma=0.5)", 0, "`step` needs `every=...`"),
        ("step(every=1.5)", 11, "`every` expects a whole number of steps"),
        (
            "cosine(100",
            10,
            "expected `,` or `)` after an argument, found the end of the spec",
        ),
        ("cosine(100) then", 16, "expected a schedule name"),
        (
            "step(every=10) then cosine(5)",
            0,
            "`step` has no natural length; write `step(...) for N then ...`",
        ),
        ("plateau then cosine(5)", 0, "`plateau` has no length"),
        ("cosine(5) * plateau", 12, "`plateau` cannot be multiplied"),
        ("cosine(5) for 10", 14, "`for N` only goes before `then`"),
        ("exp(gamma=0.9, lambda=0.1)", 22, "either `gamma` or `lambda`, not both"),
        ("exp", 0, "`exp` needs `gamma=`"),
        ("cyclic(0.1)", 7, "`cyclic` takes key=value arguments"),
        (
            "cosine(100, 5)",
            12,
            "only the first argument of `cosine` (`t_max`) may omit its name",
        ),
        (
            "warmup(5, start=0)",
            16,
            "invalid start = 0: expected 0 < start_factor <= 1",
        ),
        ("cosine(100, min=-1)", 16, "invalid min = -1"),
        (
            "onecycle(total=3)",
            0,
            "invalid pct = 0.3: leaves a one-cycle phase empty",
        ),
        (
            "cyclic(max=0.1, mode=sawtooth)",
            21,
            "`mode` expects one of triangular, triangular2, exp_range",
        ),
        (
            "onecycle(100, three_phase=yes)",
            26,
            "`three_phase` expects one of true, false",
        ),
        ("step(every=10, gamma=0.5, every=3)", 26, "`every` is given twice"),
        (
            "constant per fortnight",
            13,
            "expected `step` or `epoch` after `per`, found `fortnight`",
        ),
        (
            "constant )",
            9,
            "expected `*`, `for`, `then`, `per` or the end of the spec, found `)`",
        ),
        ("multistep(at=[30, x])", 18, "expected a number in the list, found `x`"),
        ("multistep(at=[30, 80)", 20, "expected `,` or `]` in the list"),
        ("multistep(at=[30, 2.5])", 18, "expected a whole number of steps"),
        (
            "",
            0,
            "expected a schedule name such as `cosine(1000)`, found the end of the spec",
        ),
        (
            "constant for 0 then cosine(5)",
            13,
            "expected a whole number of steps >= 1 after `for`",
        ),
        (
            "constant for 1e20 then cosine(5)",
            13,
            "expected a whole number of steps >= 1",
        ),
        ("then", 0, "expected a schedule name"),
        ("warmup(5) → cosine(9)", 10, "unexpected character `→`"),
        ("step(every=1e-3x)", 11, "invalid number `1e-3x`"),
        ("plateau(factor=2)", 15, "invalid factor = 2: expected 0 <= factor < 1"),
        ("multistep(at=[30;80])", 16, "(lists are written [30, 80])"),
        ("wsd(warmup=5)", 0, "`wsd` needs `total=...`"),
        (
            "wsd(100, decay=0.2, decay_steps=5)",
            32,
            "give either `decay` (a fraction) or `decay_steps`",
        ),
        (
            "wsd(100, decay=20)",
            15,
            "invalid decay = 20: expected a fraction of total in (0, 1]",
        ),
        (
            "wsd(100, warmup=90, decay_steps=20)",
            32,
            "invalid decay_steps = 20: expected warmup + cooldown <= total",
        ),
        ("wsd(100, shape=cos)", 15, "`shape` expects one of sqrt, linear"),
        (
            "wsd(100, min=0.2)",
            13,
            "invalid min = 0.2: expected 0 <= min <= the peak rate",
        ),
        (
            "linear(10, warmup=10)",
            18,
            "invalid warmup = 10: expected warmup < total",
        ),
        ("linear(10, decay=0.5)", 11, "unknown parameter `decay` for `linear`"),
    ];
    for &(spec, offset, message) in cases {
        match parse_schedule(spec, 0.1) {
            Err(ScheduleError::Parse {
                offset: o, message: m, ..
            }) => {
                assert!(m.contains(message), "{spec}: message {m:?} lacks {message:?}");
                assert_eq!(o, offset, "{spec}: {m}");
            }
            other => panic!("{spec}: expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn error_display_matches_the_module_doc() {
    let e = parse_schedule("step(gama=0.5, every=1000)", 0.1).unwrap_err();
    let expected =
        "invalid schedule at column 6: unknown parameter `gama` for `step`; expected one of every, gamma\n  \
                    step(gama=0.5, every=1000)\n       ^^^^";
    assert_eq!(e.to_string(), expected);
    let e = parse_schedule("constant", -1.0).unwrap_err();
    assert!(matches!(e, ScheduleError::Config { name: "base_lr", .. }), "{e}");
}
