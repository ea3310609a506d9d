//! MONITOR.md §5.2: the STEP sequences S1-S8 (final state, reason, online trajectory, suggestion,
//! and the debugging evidence values at the last step, ±2 % relative).

use crate::data::*;
use stride_monitor::{
    diagnose_step_records, diagnose_steps, trajectory, Action, Diagnosis, Event, MonitorConfig, Reason, State,
    StepRecord,
};

fn traj(parts: &[(char, usize)]) -> String {
    parts.iter().map(|(c, k)| c.to_string().repeat(*k)).collect()
}

struct Case {
    name: &'static str,
    lr: f64,
    losses: &'static [f64],
    state: State,
    reason: Reason,
    trajectory: Vec<(char, usize)>,
    action: Action,
    new_lr: Option<f64>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "S1",
            lr: 3e-3,
            losses: &S1,
            state: State::Healthy,
            reason: Reason::Improving,
            trajectory: vec![('.', 19), ('H', 41)],
            action: Action::Keep,
            new_lr: Some(3e-3),
        },
        Case {
            name: "S3",
            lr: 3e-3,
            losses: &S3,
            state: State::Healthy,
            reason: Reason::Improving,
            trajectory: vec![('.', 19), ('H', 11), ('O', 2), ('H', 28)],
            action: Action::Keep,
            new_lr: Some(3e-3),
        },
        Case {
            name: "S4",
            lr: 0.5,
            losses: &S4,
            state: State::Diverging,
            reason: Reason::Hard4x,
            trajectory: vec![('.', 19), ('O', 7), ('D', 14)],
            action: Action::Rollback,
            new_lr: Some(0.005),
        },
        Case {
            name: "S5",
            lr: 0.8,
            losses: &S5,
            state: State::Oscillating,
            reason: Reason::Period2,
            trajectory: vec![('.', 19), ('O', 21)],
            action: Action::Lower,
            new_lr: Some(0.24),
        },
        Case {
            name: "S6",
            lr: 0.05,
            losses: &S6,
            state: State::Plateau,
            reason: Reason::FlatAfterProgress,
            trajectory: vec![('.', 19), ('H', 44), ('P', 7)],
            action: Action::Decay,
            new_lr: Some(0.025),
        },
        Case {
            name: "S7",
            lr: 1e-5,
            losses: &S7,
            state: State::Slow,
            reason: Reason::SlowRate,
            trajectory: vec![('.', 19), ('S', 41)],
            action: Action::Raise,
            new_lr: Some(1e-4),
        },
        Case {
            name: "S8",
            lr: 6e-4,
            losses: &S8,
            state: State::Oscillating,
            reason: Reason::SpikeRate,
            trajectory: vec![('.', 19), ('H', 1), ('O', 1), ('H', 7), ('O', 1), ('H', 7), ('O', 24)],
            action: Action::Lower,
            new_lr: Some(3e-4),
        },
    ]
}

fn with_warmup(warmup: Option<u64>) -> Vec<Diagnosis> {
    let recs: Vec<StepRecord> = S2
        .iter()
        .enumerate()
        .map(|(i, l)| StepRecord {
            warmup_steps: warmup,
            ..StepRecord::new(i as u64, *l, 1e-3)
        })
        .collect();
    diagnose_step_records(&recs, MonitorConfig::default()).expect("valid config")
}

#[test]
fn step_sequences_table() {
    let mut failures = Vec::new();
    for c in cases() {
        let d = diagnose_steps(c.losses, c.lr);
        let last = d.last().expect("non-empty");
        let got = (
            trajectory(&d),
            last.state,
            last.reason,
            last.suggestion.action,
            last.suggestion.new_lr,
        );
        let want = (traj(&c.trajectory), c.state, c.reason, c.action, c.new_lr);
        if got != want {
            let reasons: Vec<String> = d.iter().map(|d| d.reason.to_string()).collect();
            failures.push(format!(
                "{}: got {:?}\n   want {:?}\n   reasons {:?}",
                c.name, got, want, reasons
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn s2_warmup_known_and_unknown() {
    for w in [Some(7), None] {
        let d = with_warmup(w);
        assert_eq!(trajectory(&d), traj(&[('.', 19), ('H', 29)]), "warmup {w:?}");
        assert_eq!(d.last().unwrap().suggestion.action, Action::Keep);
    }
}

fn close(got: Option<f64>, want: f64, what: &str) {
    let g = got.unwrap_or(f64::NAN);
    assert!(
        (g - want).abs() <= 0.02 * want.abs(),
        "{what}: got {g}, want {want} ±2 %"
    );
}

#[test]
fn s1_evidence() {
    let d = diagnose_steps(&S1, 3e-3).pop().unwrap();
    close(d.evidence.k, 0.0218, "k");
    close(d.evidence.rho, 0.92, "rho");
    close(d.evidence.t_half, 31.8, "t_half");
}

#[test]
fn s3_one_spike_episode() {
    let d = diagnose_steps(&S3, 3e-3);
    close(d.last().unwrap().evidence.k, 0.0162, "k");
    let spikes: Vec<u64> = d
        .iter()
        .flat_map(|d| d.events.iter())
        .filter_map(|e| match e {
            Event::Spike { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(spikes, vec![30], "one spike event (the episode opening)");
    let recovered: Vec<u64> = d
        .iter()
        .flat_map(|d| d.events.iter())
        .filter_map(|e| match e {
            Event::SpikeRecovered { step } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(recovered, vec![32]);
    assert_eq!(d.last().unwrap().evidence.spikes_in_window, Some(1));
}

#[test]
fn s4_reasons_and_rollback() {
    let d = diagnose_steps(&S4, 0.5);
    let r = |i: usize| d[i].reason;
    assert!(
        (19..26).all(|i| r(i) == Reason::SpikeActive),
        "{:?}",
        (19..26).map(r).collect::<Vec<_>>()
    );
    assert_eq!(r(26), Reason::SpikeNotRecovering);
    assert_eq!(r(28), Reason::PersistentOutliers);
    assert!((28..38).all(|i| r(i) == Reason::PersistentOutliers));
    assert_eq!(r(38), Reason::Hard4x);
    let s = &d[39].suggestion;
    assert_eq!(s.rollback_to, Some(15));
    assert_eq!(s.alt_lr, Some(0.0005));
    assert!(s.extras.iter().any(|e| e.contains("clipping")));
}

#[test]
fn s5_evidence() {
    let d = diagnose_steps(&S5, 0.8).pop().unwrap();
    close(d.evidence.ac1, -0.965, "ac1");
    close(d.evidence.cv, 0.609, "cv");
}

#[test]
fn s6_evidence() {
    let d = diagnose_steps(&S6, 0.05).pop().unwrap();
    assert!(d.evidence.k.unwrap().abs() < 1e-3, "k {:?}", d.evidence.k);
    close(d.evidence.k_peak, 0.070, "k_peak");
    close(d.evidence.d, 0.50, "D");
    close(d.evidence.cv, 0.0055, "cv");
}

#[test]
fn s7_evidence() {
    let d = diagnose_steps(&S7, 1e-5).pop().unwrap();
    close(d.evidence.k, 8.9e-5, "k");
    close(d.evidence.rho, 0.92, "rho");
    close(d.evidence.t_half, 7790.0, "t_half");
}

#[test]
fn s8_spike_episodes() {
    let d = diagnose_steps(&S8, 6e-4);
    let spikes: Vec<u64> = d
        .iter()
        .flat_map(|d| d.events.iter())
        .filter_map(|e| match e {
            Event::Spike { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(spikes, vec![20, 28, 36, 44, 52]);
    let last = d.last().unwrap();
    assert_eq!(last.evidence.spikes_in_window, Some(5));
    assert!(last.suggestion.extras.iter().any(|e| e.contains("clipping")));
}
