//! MONITOR.md §5.1: the EPOCH sequences E1-E12 (final state, reason, online trajectory, suggestion).

use stride_monitor::{diagnose_epochs, trajectory, Action, Diagnosis, Reason, State};

const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;

struct Case {
    name: &'static str,
    lr: f64,
    losses: &'static [f64],
    state: State,
    reason: Reason,
    trajectory: &'static str,
    action: Action,
    new_lr: Option<f64>,
}

const CASES: &[Case] = &[
    Case {
        name: "E1",
        lr: 0.1,
        losses: &[0.8, 0.5, 0.4, 0.38, 0.37],
        state: State::Healthy,
        reason: Reason::Improving,
        trajectory: "..HHH",
        action: Action::Keep,
        new_lr: Some(0.1),
    },
    Case {
        name: "E2",
        lr: 1.0,
        losses: &[0.8, 1.5, 3.2, 8.7, NAN],
        state: State::Diverging,
        reason: Reason::NonfiniteAfterDivergence,
        trajectory: ".ODDD",
        action: Action::Rollback,
        new_lr: Some(0.01),
    },
    Case {
        name: "E3",
        lr: 1e-4,
        losses: &[0.800, 0.7995, 0.7990, 0.7985, 0.7980, 0.7975],
        state: State::Slow,
        reason: Reason::SlowRate,
        trajectory: "..SSSS",
        action: Action::Raise,
        new_lr: Some(1e-3),
    },
    Case {
        name: "E4",
        lr: 1e-3,
        losses: &[0.800, 0.792, 0.784, 0.776, 0.768],
        state: State::Slow,
        reason: Reason::SlowRate,
        trajectory: "..SSS",
        action: Action::Raise,
        new_lr: Some(3e-3),
    },
    Case {
        name: "E5",
        lr: 0.1,
        losses: &[0.8, 0.5, 0.4, 0.38, 0.37, 0.368, 0.367, 0.3668],
        state: State::Plateau,
        reason: Reason::NoImprovement,
        trajectory: "..HHHHHP",
        action: Action::Decay,
        new_lr: Some(0.01),
    },
    Case {
        name: "E6",
        lr: 0.5,
        losses: &[0.80, 0.55, 0.70, 0.52, 0.68, 0.54, 0.69],
        state: State::Oscillating,
        reason: Reason::Bounce,
        trajectory: "..OHOOO",
        action: Action::Lower,
        new_lr: Some(0.25),
    },
    Case {
        name: "E7",
        lr: 0.1,
        losses: &[1.00, 0.70, 0.55, 0.85, 0.50, 0.45, 0.42],
        state: State::Healthy,
        reason: Reason::Improving,
        trajectory: "..HOHHH",
        action: Action::Keep,
        new_lr: Some(0.1),
    },
    Case {
        name: "E8",
        lr: 0.01,
        losses: &[NAN],
        state: State::Exploded,
        reason: Reason::NonfiniteSudden,
        trajectory: "X",
        action: Action::Lower,
        new_lr: Some(0.001),
    },
    Case {
        name: "E9",
        lr: 0.05,
        losses: &[0.9, 0.6, 0.45, 0.40, INF],
        state: State::Exploded,
        reason: Reason::NonfiniteSudden,
        trajectory: "..HHX",
        action: Action::Rollback,
        new_lr: Some(0.005),
    },
    Case {
        name: "E10",
        lr: 1e-5,
        losses: &[2.3026, 2.3026, 2.3025, 2.3026, 2.3025],
        state: State::Slow,
        reason: Reason::SlowRate,
        trajectory: "..SSS",
        action: Action::Raise,
        new_lr: Some(1e-4),
    },
    Case {
        name: "E11",
        lr: 0.3,
        losses: &[1.0, 0.70, 0.76, 0.55, 0.60, 0.42, 0.46, 0.33],
        state: State::Healthy,
        reason: Reason::Improving,
        trajectory: "..HHOHOH",
        action: Action::Keep,
        new_lr: Some(0.3),
    },
    Case {
        name: "E12",
        lr: 0.05,
        losses: &[0.8, 0.5, 0.45, 0.48, 0.53, 0.60],
        state: State::Diverging,
        reason: Reason::TwoRises,
        trajectory: "..HHOD",
        action: Action::Lower,
        new_lr: Some(0.005),
    },
];

fn run(c: &Case) -> Vec<Diagnosis> {
    diagnose_epochs(c.losses, c.lr)
}

#[test]
fn epoch_sequences_table() {
    let mut failures = Vec::new();
    for c in CASES {
        let d = run(c);
        let last = d.last().expect("non-empty");
        let got = (
            trajectory(&d),
            last.state,
            last.reason,
            last.suggestion.action,
            last.suggestion.new_lr,
        );
        let want = (c.trajectory.to_string(), c.state, c.reason, c.action, c.new_lr);
        if got != want {
            failures.push(format!(
                "{}: got {:?}, want {:?} ({})",
                c.name, got, want, last.suggestion.text
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn last(name: &str) -> Diagnosis {
    let c = CASES.iter().find(|c| c.name == name).expect("case");
    run(c).pop().expect("non-empty")
}

#[test]
fn worked_example_a_relative_improvements() {
    let d = last("E1");
    let r: Vec<f64> = d
        .evidence
        .rel_improvements
        .iter()
        .map(|r| (r * 1000.0).round() / 10.0)
        .collect();
    assert_eq!(r, vec![37.5, 20.0, 5.0, 2.6]);
    assert_eq!(d.suggestion.action, Action::Keep);
    assert!(d.suggestion.text.contains("keep lr 0.1"), "{}", d.suggestion.text);
    assert!((d.evidence.rho.unwrap() - 0.133).abs() < 1e-3);
    assert_eq!(d.evidence.bad_count, Some(0));
}

#[test]
fn worked_example_b_sentence_and_rates() {
    let d = last("E2");
    assert!(d.evidence.nonfinite_reached);
    assert_eq!(d.suggestion.new_lr, Some(0.01));
    assert_eq!(d.suggestion.alt_lr, Some(0.001));
    assert_eq!(d.suggestion.rollback_to, Some(1));
    assert_eq!(
        d.suggestion.text,
        "lr 1.0 is too high: the loss rose 0.8 -> 1.5 -> 3.2 -> 8.7 -> NaN; roll back and use 0.01 (then 0.001 if it diverges again)"
    );
    assert!(d.suggestion.extras.iter().any(|e| e.contains("warmup")));
    assert!(d.suggestion.extras.iter().any(|e| e.contains("clipping")));
    let reasons: Vec<Reason> = run(CASES.iter().find(|c| c.name == "E2").unwrap())
        .iter()
        .map(|d| d.reason)
        .collect();
    assert_eq!(reasons[1], Reason::Jump);
    assert_eq!(reasons[2], Reason::Hard4x);
}

#[test]
fn e2_with_lr_hi_gives_the_same_rate() {
    let cfg = stride_monitor::MonitorConfig {
        lr_hi: Some(0.01),
        ..Default::default()
    };
    let recs: Vec<_> = [0.8, 1.5, 3.2, 8.7, NAN]
        .iter()
        .enumerate()
        .map(|(i, l)| stride_monitor::EpochRecord::new(i as u64 + 1, *l, 1.0))
        .collect();
    let d = stride_monitor::diagnose_epoch_records(&recs, cfg).unwrap();
    assert_eq!(d[4].suggestion.new_lr, Some(0.01));
    assert_eq!(d[4].suggestion.alt_lr, Some(0.001));
}

#[test]
fn e3_e10_halving_times() {
    let e3 = last("E3");
    assert!(
        (e3.evidence.t_half.unwrap() - 1107.0).abs() / 1107.0 < 0.02,
        "{:?}",
        e3.evidence.t_half
    );
    let e4 = last("E4");
    assert!(
        (e4.evidence.t_half.unwrap() - 67.6).abs() < 0.5,
        "{:?}",
        e4.evidence.t_half
    );
    let e10 = last("E10");
    assert!(
        (e10.evidence.t_half.unwrap() - 16000.0).abs() / 16000.0 < 0.02,
        "{:?}",
        e10.evidence.t_half
    );
    assert!(
        e10.suggestion.extras.iter().any(|e| e.contains("gradients")),
        "{:?}",
        e10.suggestion.extras
    );
}

#[test]
fn e5_plateau_numbers() {
    let d = last("E5");
    assert_eq!(d.evidence.bad_count, Some(3));
    assert!((d.evidence.d.unwrap() - 0.5415).abs() < 1e-3);
    assert!(d.suggestion.extras.iter().any(|e| e.contains("cooldown of 2 epochs")));
}

#[test]
fn e8_e9_exploded_suggestions() {
    let e8 = last("E8");
    assert_eq!(e8.suggestion.rollback_to, None);
    assert!(e8.suggestion.text.contains("check inputs"), "{}", e8.suggestion.text);
    assert!(e8.suggestion.extras.iter().any(|e| e.contains("warmup")));
    let e9 = last("E9");
    assert_eq!(e9.suggestion.rollback_to, Some(4));
    assert!(e9.suggestion.extras.iter().any(|e| e.contains("clipping")));
    assert!(e9.suggestion.extras.iter().any(|e| e.contains("skip the batches")));
}

#[test]
fn e11_mk_and_e12_mild() {
    let e11 = last("E11");
    assert!(
        (e11.evidence.mk_z.unwrap() + 1.88).abs() < 0.01,
        "{:?}",
        e11.evidence.mk_z
    );
    let e12 = last("E12");
    assert!((e12.evidence.ratio_to_best.unwrap() - 1.333).abs() < 1e-3);
    assert_eq!(e12.suggestion.rollback_to, None);
    assert_eq!(e12.suggestion.alt_lr, Some(0.0005));
    assert!(e12.suggestion.extras.iter().any(|e| e.contains("clipping")));
    assert!(!e12.suggestion.extras.iter().any(|e| e.contains("warmup")));
}

#[test]
fn nonfinite_latches_until_reset() {
    let mut m = stride_monitor::Monitor::default();
    for (i, l) in [0.9, 0.6, NAN, 0.5].iter().enumerate() {
        m.observe_epoch(&stride_monitor::EpochRecord::new(i as u64 + 1, *l, 0.1));
    }
    assert_eq!(m.overall().state, State::Exploded);
    m.reset();
    assert_eq!(m.overall().state, State::Insufficient);
}
