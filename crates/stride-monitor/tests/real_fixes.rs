//! The three real-run failure modes, as synthetic sequences shaped like them.

use stride_monitor::{
    diagnose_epoch_records, diagnose_step_records, Action, EpochRecord, MonitorConfig, Reason, State, StepRecord,
};

/// The spec's LCG noise (§5.4): `nu` uniform in [-1, 1).
struct Lcg(u64);
impl Lcg {
    fn nu(&mut self) -> f64 {
        self.0 = (1103515245 * self.0 + 12345) % (1 << 31);
        2.0 * (self.0 as f64 / (1u64 << 31) as f64) - 1.0
    }
}

fn steps(losses: &[f64], lr: f64, cfg: MonitorConfig) -> Vec<stride_monitor::Diagnosis> {
    let recs: Vec<StepRecord> = losses
        .iter()
        .enumerate()
        .map(|(i, l)| StepRecord::new(i as u64, *l, lr))
        .collect();
    diagnose_step_records(&recs, cfg).unwrap()
}

/// Fix 1: a healthy run whose absolute minibatch noise stays constant, so its relative noise
/// grows 2.3 -> 0.3 (as on Fashion-MNIST). The frozen-`cv_base` rule would call it noisy_flat.
#[test]
fn fix1_growing_relative_noise_is_not_oscillation() {
    let mut g = Lcg(101);
    let losses: Vec<f64> = (0..600)
        .map(|t| 2.0 * (-(t as f64) / 60.0).exp() + 0.3 + 0.12 * g.nu())
        .collect();
    let d = steps(&losses, 0.1, MonitorConfig::default());
    let last = d.last().unwrap();
    let (cv, cv_base) = (last.evidence.cv.unwrap(), last.evidence.cv_base.unwrap());
    assert!(
        cv >= 0.15 && cv >= 2.0 * cv_base,
        "the old rule's condition holds: cv {cv}, cv_base {cv_base}"
    );
    let bad: Vec<(usize, State, Reason)> = d
        .iter()
        .enumerate()
        .filter(|(_, d)| d.state >= State::Oscillating)
        .map(|(i, d)| (i, d.state, d.reason))
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    assert!(
        matches!(last.state, State::Healthy | State::Plateau),
        "{:?}",
        last.state
    );
    let old_rule_fires = d
        .iter()
        .filter(|x| {
            x.evidence
                .cv
                .is_some_and(|c| c >= 0.15 && c >= 2.0 * x.evidence.cv_base.unwrap_or(0.0))
        })
        .filter(|x| x.reason == Reason::FlatAfterProgress)
        .count();
    assert!(
        old_rule_fires > 100,
        "the frozen-cv_base rule would have said noisy_flat here ({old_rule_fires} steps)"
    );
}

/// Fix 2: a rate far too small decreases steadily (significant slope) but after hundreds of
/// steps is still within 20 % of its start.
#[test]
fn fix2_little_progress_is_slow() {
    let mut g = Lcg(202);
    let losses: Vec<f64> = (0..400)
        .map(|t| 2.3026 * (1.0 - 0.0003 * t as f64) * (1.0 + 0.03 * g.nu()))
        .collect();
    let d = steps(&losses, 1e-3, MonitorConfig::default());
    assert_eq!(
        d[198].state,
        State::Healthy,
        "the rate-history rules alone call it healthy"
    );
    let last = d.last().unwrap();
    assert_eq!((last.state, last.reason), (State::Slow, Reason::LittleProgress));
    assert_eq!(last.suggestion.action, Action::Raise);
    assert!(last.suggestion.new_lr.unwrap() > 1e-3);
}

/// Fix 3 (STEP): a far-too-large step kills the ReLU units: the loss jumps, then sits at ln 10.
#[test]
fn fix3_dead_network_steps() {
    let mut g = Lcg(303);
    let mut losses = vec![2.32, 9.0, 25.0, 6.0];
    losses.extend((0..300).map(|_| 2.3026 * (1.0 + 0.004 * g.nu())));
    for cfg in [
        MonitorConfig::default(),
        MonitorConfig {
            num_classes: Some(10),
            ..Default::default()
        },
    ] {
        let d = steps(&losses, 0.5, cfg);
        assert!(
            d.iter().all(|d| d.suggestion.action != Action::Raise),
            "never raise the rate"
        );
        assert!(
            d[100..].iter().all(|d| d.state == State::Diverging),
            "never healthy after real training time"
        );
        let last = d.last().unwrap();
        assert_eq!((last.state, last.reason), (State::Diverging, Reason::DeadNetwork));
        let s = &last.suggestion;
        assert_eq!(
            (s.action, s.rollback_to, s.new_lr, s.alt_lr),
            (Action::Rollback, None, Some(0.05), Some(0.005))
        );
        assert!(s.text.contains("restart from the initial weights"), "{}", s.text);
    }
}

/// Fix 3 (STEP): no blow-up visible, but after real training time the loss sits above its start.
#[test]
fn fix3_above_start_is_diverging() {
    let mut g = Lcg(304);
    let losses: Vec<f64> = (0..250)
        .map(|t| (2.30 + 0.15 * (t as f64 / 250.0)) * (1.0 + 0.01 * g.nu()))
        .collect();
    let last = steps(&losses, 0.3, MonitorConfig::default()).pop().unwrap();
    assert_eq!(last.state, State::Diverging, "{:?}", last.reason);
    assert!(last.suggestion.new_lr.unwrap() <= 0.03);
}

/// Fix 3 (EPOCH): a blow-up in epoch 2, then flat at chance level; and a plateau at chance level
/// after the "progress" of recovering from a blow-up inside epoch 1.
#[test]
fn fix3_dead_network_epochs() {
    let run = |losses: &[f64], cfg: MonitorConfig| {
        let recs: Vec<EpochRecord> = losses
            .iter()
            .enumerate()
            .map(|(i, l)| EpochRecord::new(i as u64 + 1, *l, 1.0))
            .collect();
        diagnose_epoch_records(&recs, cfg).unwrap().pop().unwrap()
    };
    let d = run(&[2.1, 6.0, 2.31, 2.30, 2.30], MonitorConfig::default());
    assert_eq!((d.state, d.reason), (State::Diverging, Reason::DeadNetwork));
    assert_eq!(d.suggestion.new_lr, Some(0.1));
    let chance = MonitorConfig {
        num_classes: Some(10),
        ..Default::default()
    };
    let d = run(&[3.5, 2.3030, 2.3027, 2.3026, 2.3026], chance);
    assert_eq!((d.state, d.reason), (State::Diverging, Reason::DeadNetwork));
    let d = run(&[3.5, 2.3030, 2.3027, 2.3026, 2.3026], MonitorConfig::default());
    assert_eq!(
        d.state,
        State::Plateau,
        "without ln C it is a plateau (decay, never raise)"
    );
}

/// Real case (issue 5's Fashion-MNIST sweep, SGD lr 1.0, batch 128, seed 0, 2345 steps): the
/// loss blew up to 11 in the first epoch, then hovered a little below its start; the stall
/// was answered with "lr 1.0 is too small ... raise it to 10.0". A run that has blown up is
/// never told to raise its rate.
#[test]
fn stall_after_a_blow_up_is_never_told_to_raise() {
    let losses: Vec<f64> = include_str!("../fixtures/real_cases/fashion_sgd_lr1.txt")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(losses.len(), 2345);
    let cfg = MonitorConfig {
        num_classes: Some(10),
        eval_every: 8,
        ..MonitorConfig::default()
    };
    let d = steps(&losses, 1.0, cfg);
    let raised: Vec<(usize, State, Reason)> = d
        .iter()
        .enumerate()
        .filter(|(_, d)| d.suggestion.action == Action::Raise)
        .map(|(i, d)| (i, d.state, d.reason))
        .collect();
    assert!(
        raised.is_empty(),
        "told to raise at {:?}",
        &raised[..raised.len().min(5)]
    );
    assert!(d.iter().any(|d| d.state == State::Slow), "the stall is still reported");
}
