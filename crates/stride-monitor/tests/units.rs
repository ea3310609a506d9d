//! MONITOR.md §5.3 unit tests that concern the monitor (U1's plateau counter, U4, U5, U6) and
//! API-level checks. U2 (LR finder) and U3 (sharpness by power iteration) belong to other crates.

use stride_monitor::stats::{mad, mann_kendall_z, median, ols, Ema};
use stride_monitor::{
    diagnose_epoch_records, diagnose_steps, raise_with_caps, stability_warning, Diagnosis, EpochRecord, Event, Monitor,
    MonitorConfig, MonitorError, RaiseCaps, Reason, State, StepRecord, StepSize,
};

#[test]
fn u1_validation_plateau_fires_where_pytorch_reduces_first() {
    // PyTorch ReduceLROnPlateau(factor 0.1, patience 2, threshold 0.01 rel) first reduces at epoch 6.
    let val = [
        1.00, 0.80, 0.70, 0.695, 0.694, 0.693, 0.692, 0.60, 0.599, 0.598, 0.597, 0.596, 0.595,
    ];
    let train = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.28, 0.26, 0.24];
    let recs: Vec<EpochRecord> = (0..13)
        .map(|i| EpochRecord {
            epoch: i as u64 + 1,
            train_loss: train[i],
            val_loss: Some(val[i]),
            lr: 0.1,
        })
        .collect();
    let d = diagnose_epoch_records(&recs, MonitorConfig::default()).unwrap();
    let first = d
        .iter()
        .position(|d| d.reason == Reason::ValNoImprovement)
        .map(|i| i + 1);
    assert_eq!(first, Some(6));
    assert_eq!(d[5].state, State::Plateau);
    assert_eq!(d[5].suggestion.new_lr, Some(0.01));
}

#[test]
fn u4_suggestion_caps() {
    let none = RaiseCaps {
        theta: 2.0,
        ..Default::default()
    };
    assert_eq!(raise_with_caps(1e-4, 10.0, &none), 1e-3);
    let sharp = RaiseCaps {
        sharpness: Some(5000.0),
        ..none
    };
    assert_eq!(raise_with_caps(1e-4, 10.0, &sharp), 2e-4);
    let ratio = RaiseCaps {
        update_ratio: Some(2e-4),
        ..none
    };
    assert_eq!(raise_with_caps(1e-4, 10.0, &ratio), 5e-4);
    let both = RaiseCaps {
        update_ratio: Some(2e-4),
        sharpness: Some(5000.0),
        ..none
    };
    assert_eq!(raise_with_caps(1e-4, 10.0, &both), 2e-4);
}

#[test]
fn u5_ema_bias_correction() {
    let mut e = Ema::new(0.98);
    assert_eq!(e.update(2.0), 2.0);
    let v = e.update(1.0);
    assert!((v - 1.4949).abs() < 1e-4, "{v}");
}

#[test]
fn u6_non_recovering_spike() {
    let mut losses: Vec<f64> = (0..30).map(|t| 2.0 * (-0.05 * t as f64).exp() + 0.5).collect();
    let last = losses[29];
    losses.extend(std::iter::repeat_n(2.2 * last, 20));
    let d = diagnose_steps(&losses, 0.1).pop().unwrap();
    assert_eq!((d.state, d.reason), (State::Diverging, Reason::SpikeNotRecovering));
}

#[test]
fn stats_basics() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    assert!(median(&[]).is_nan());
    assert_eq!(mad(&[1.0, 2.0, 3.0, 4.0, 100.0]), 1.0);
    // pyMannKendall original_test on [1, 2, 3, 4, 5]: S = 10, Var = 50/3... Z = 9 / sqrt(50/3) = 2.2045.
    assert!((mann_kendall_z(&[1.0, 2.0, 3.0, 4.0, 5.0]) - 2.2045).abs() < 1e-4);
    assert_eq!(mann_kendall_z(&[1.0, 1.0, 1.0]), 0.0);
    let fit = ols(&[0.0, 1.0, 2.0, 3.0], &[1.0, 3.0, 5.0, 7.0]).unwrap();
    assert!((fit.slope - 2.0).abs() < 1e-12 && fit.se.abs() < 1e-12);
}

#[test]
fn nan_and_inf_are_data_not_panics() {
    let mut m = Monitor::default();
    for (i, l) in [f64::NAN, f64::INFINITY, -1.0, 0.0, 1e40].iter().enumerate() {
        let d = m.observe_step(&StepRecord {
            grad_norm: Some(f64::NAN),
            ..StepRecord::new(i as u64, *l, f64::NAN)
        });
        assert_eq!(d.state, State::Exploded);
    }
    let mut m = Monitor::default();
    for i in 0..50 {
        m.observe_step(&StepRecord::new(i, if i % 7 == 0 { 0.0 } else { 1.0 }, 0.1));
    }
    let mut m = Monitor::default();
    let d = m.observe_step(&StepRecord {
        grad_norm: Some(f64::INFINITY),
        ..StepRecord::new(0, 2.3, 0.1)
    });
    assert_eq!(d.reason, Reason::NonfiniteSudden);
}

#[test]
fn config_is_validated() {
    let bad = MonitorConfig {
        ema_beta: 1.5,
        ..Default::default()
    };
    match Monitor::new(bad) {
        Err(MonitorError::InvalidConfig { field, .. }) => assert_eq!(field, "ema_beta"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    assert!(Monitor::new(MonitorConfig {
        num_classes: Some(1),
        ..Default::default()
    })
    .is_err());
    assert!(MonitorConfig::default().validate().is_ok());
}

#[test]
fn lr_change_starts_a_segment_with_cooldown() {
    let mut m = Monitor::default();
    for i in 0..60 {
        m.observe_step(&StepRecord::new(i, 2.3 - 0.0002 * i as f64, 1e-5));
    }
    assert_eq!(m.overall().state, State::Slow);
    let d = m.observe_step(&StepRecord::new(60, 2.28, 1e-4));
    assert!(d.events.iter().any(|e| matches!(e, Event::LrChange { .. })));
    assert_eq!(d.evidence.n, 1);
    assert_eq!(d.state, State::Insufficient);
    m.notify_lr_change(1e-4);
    let d = m.observe_step(&StepRecord::new(61, 2.27, 1e-4));
    assert!(d.events.is_empty());
}

#[test]
fn overfit_event_and_overall() {
    let train = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3];
    let val = [1.0, 0.85, 0.7, 0.75, 0.8, 0.9];
    let mut m = Monitor::default();
    let mut out: Vec<Diagnosis> = Vec::new();
    for i in 0..6 {
        let rec = EpochRecord {
            epoch: i as u64 + 1,
            train_loss: train[i],
            val_loss: Some(val[i]),
            lr: 0.1,
        };
        out.push(m.observe_epoch(&rec));
        if i == 4 {
            assert_eq!(m.overall().reason, Reason::Overfit);
        }
    }
    let d = &out[4];
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::Overfit { best_epoch: 3, .. })),
        "{:?}",
        d.events
    );
    assert_eq!(d.reason, Reason::Overfit);
    assert_eq!(d.suggestion.rollback_to, Some(3));
    // Third bad epoch: the validation PLATEAU wins, the overfit event stays.
    let d = &out[5];
    assert_eq!((d.state, d.reason), (State::Plateau, Reason::ValNoImprovement));
    assert!(d.events.iter().any(|e| matches!(e, Event::Overfit { .. })));
}

#[test]
fn diagnosis_serializes() {
    let d = diagnose_steps(&crate::data::S4, 0.5).pop().unwrap();
    let json = serde_json::to_string(&d).unwrap();
    assert!(
        json.contains("\"state\":\"diverging\"") && json.contains("\"reason\":\"hard_4x\""),
        "{json}"
    );
    let back: Diagnosis = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (back.state, back.reason, back.suggestion),
        (d.state, d.reason, d.suggestion)
    );
    let cfg: MonitorConfig = serde_json::from_str("{\"num_classes\": 10}").unwrap();
    assert_eq!(cfg.num_classes, Some(10));
    assert_eq!(format!("{}", State::Plateau), "plateau");
}

#[test]
fn u3_sharpness_margin_warns_before_the_loss_rises() {
    // lambda = 6 at lr 1.0 (SGD, theta 2): limit 2/6 = 0.333, margin 3.0, while the loss still falls.
    let mut m = Monitor::default();
    let first = m.observe_step(&StepRecord {
        sharpness: Some(6.0),
        ..StepRecord::new(1, 2.3, 1.0)
    });
    let event = first
        .events
        .iter()
        .find_map(|e| match e {
            Event::UnstableRate { limit, margin, .. } => Some((*limit, *margin)),
            _ => None,
        })
        .expect("an UnstableRate event");
    assert!(
        (event.0 - 1.0 / 3.0).abs() < 1e-12 && (event.1 - 3.0).abs() < 1e-12,
        "{event:?}"
    );
    assert_eq!(first.evidence.margin, Some(3.0));
    let text = stability_warning(1.0, 6.0, 2.0);
    assert!(
        text.starts_with("lr 1.0 is 3.0x the stability limit 2/lambda = 0.33 for this model"),
        "{text}"
    );
    // U3: lambda 10, lr 0.25 -> s = 1.25 (event); lr 0.15 -> s = 0.75 (none).
    for (lr, margin, warned) in [(0.25, 1.25, true), (0.15, 0.75, false)] {
        let mut m = Monitor::default();
        let d = m.observe_step(&StepRecord {
            sharpness: Some(10.0),
            ..StepRecord::new(1, 2.3, lr)
        });
        assert!((d.evidence.margin.unwrap() - margin).abs() < 1e-12);
        let has = d.events.iter().any(|e| matches!(e, Event::UnstableRate { .. }));
        assert_eq!(has, warned, "lr {lr}");
    }
    // Adam: the record's theta (38) replaces the config's 2.
    let mut m = Monitor::default();
    let d = m.observe_step(&StepRecord {
        sharpness: Some(1000.0),
        stability_threshold: Some(38.0),
        ..StepRecord::new(1, 2.3, 0.001)
    });
    assert!((d.evidence.margin.unwrap() - 1.0 / 38.0).abs() < 1e-12);
}

#[test]
fn u4_slow_raise_is_capped_by_the_records_sharpness() {
    // A slow run at lr 1e-4 (x10 wanted) with lambda 5000 (SGD): the cap theta/(2 lambda) = 2e-4.
    let mut m = Monitor::default();
    let mut last = None;
    for t in 0..400u64 {
        let loss = 2.3 - 1e-5 * t as f64;
        last = Some(m.observe_step(&StepRecord {
            sharpness: (t == 0).then_some(5000.0),
            ..StepRecord::new(t + 1, loss, 1e-4)
        }));
    }
    let d = last.unwrap();
    assert_eq!(d.state, State::Slow, "{d:?}");
    assert_eq!(d.suggestion.new_lr, Some(2e-4), "{}", d.suggestion.text);
}

/// A fast drop, then a flat tail with 10 % noise (a deterministic LCG).
fn drop_then_flat(n: u64) -> Vec<f64> {
    let mut r: u64 = 12345;
    (0..n)
        .map(|t| {
            r = (6364136223846793005u64.wrapping_mul(r).wrapping_add(1442695040888963407)) >> 1;
            let u = (r % 1_000_000) as f64 / 1_000_000.0 - 0.5;
            (0.4 + 1.9 * (-(t as f64) / 25.0).exp()) * (1.0 + 0.2 * u)
        })
        .collect()
}

#[test]
fn a_run_of_several_epochs_leaves_plateaus_to_its_epochs() {
    let states = |epochs_judge_plateau: bool| {
        let mut m = Monitor::new(MonitorConfig {
            epochs_judge_plateau,
            ..MonitorConfig::default()
        })
        .unwrap();
        drop_then_flat(600)
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let d = m.observe_step(&StepRecord::new(i as u64, *l, 0.1));
                (d.state, d.reason)
            })
            .collect::<Vec<_>>()
    };
    let alone = states(false);
    assert!(
        alone.contains(&(State::Plateau, Reason::FlatAfterProgress)),
        "{alone:?}"
    );
    let with_epochs = states(true);
    assert!(with_epochs.iter().all(|s| s.0 != State::Plateau), "{with_epochs:?}");
    assert!(with_epochs.contains(&(State::Healthy, Reason::DiminishingReturns)));
    // Everything else is judged as before.
    for (a, b) in alone.iter().zip(&with_epochs) {
        if *a != (State::Plateau, Reason::FlatAfterProgress) {
            assert_eq!(a, b);
        }
    }
}

#[test]
fn suggestions_for_step_size_estimators_name_their_knobs() {
    let text = |step_size: StepSize, lr: f64| {
        let mut m = Monitor::new(MonitorConfig {
            step_size,
            ..MonitorConfig::default()
        })
        .unwrap();
        let mut last = None;
        for i in 0..80u64 {
            // Down for 40 steps, then up 10 % a step: a divergence.
            let loss = if i < 40 {
                2.3 - 0.02 * i as f64
            } else {
                1.5 * 1.1f64.powi(i as i32 - 40)
            };
            let d = m.observe_step(&StepRecord {
                effective_lr: Some(3e-3),
                ..StepRecord::new(i, loss, lr)
            });
            if d.state >= State::Diverging {
                last = Some(d.suggestion.text);
                break;
            }
        }
        last.expect("the divergence is seen")
    };
    let plain = text(StepSize::Rate, 0.1);
    assert!(plain.starts_with("lr 0.1 is too high"), "{plain}");
    let prodigy = text(StepSize::Prodigy, 1.0);
    assert!(
        prodigy.contains("Prodigy's step-size estimate is too large (its step d x lr is 0.003 now)")
            && prodigy.contains("set d_coef")
            && prodigy.contains("keep lr 1")
            && prodigy.contains("safeguard_warmup"),
        "{prodigy}"
    );
    let dadapt = text(StepSize::DAdaptation, 1.0);
    assert!(
        dadapt.contains("D-Adaptation's step-size estimate is too large") && dadapt.contains("growth_rate"),
        "{dadapt}"
    );
}
