//! The whole-run verdict of `stride diagnose` (issue 14): sparse logs, noise, shifts and scales,
//! spikes, rising losses, overfitting, dead networks, schedules and bounded advice.

use stride_monitor::{
    diagnose_loss_log, judge_run, read_log, Action, Confidence, LogOptions, LogPoint, ReadOptions, Reason, RunInput,
    RunVerdict, State, StreamChoice, ValPoint, XUnit,
};

/// Deterministic noise in [-1, 1] (a fixed LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = (1103515245 * self.0 + 12345) % (1 << 31);
        2.0 * (self.0 as f64 / (1u64 << 31) as f64) - 1.0
    }
}

fn points(losses: &[f64], every: f64, lr: Option<f64>) -> Vec<LogPoint> {
    losses
        .iter()
        .enumerate()
        .map(|(i, l)| LogPoint {
            x: (i as f64 + 1.0) * every,
            loss: *l,
            lr,
        })
        .collect()
}

fn judge(p: &[LogPoint], val: &[ValPoint], lr: Option<f64>, classes: Option<u32>) -> RunVerdict {
    judge_run(&RunInput {
        points: p,
        val,
        lr,
        num_classes: classes,
        unit: XUnit::Step,
        live: None,
    })
}

fn judge_losses(losses: &[f64]) -> RunVerdict {
    judge(&points(losses, 1.0, None), &[], None, None)
}

/// `2 e^(-t/tau) + floor` with multiplicative noise `rel`.
fn decay(n: usize, tau: f64, floor: f64, rel: f64, seed: u64) -> Vec<f64> {
    let mut r = Lcg(seed);
    (0..n)
        .map(|t| (2.0 * (-(t as f64) / tau).exp() + floor) * (1.0 + rel * r.next()))
        .collect()
}

fn diagnose_text(text: &str, opts: &LogOptions) -> stride_monitor::LogDiagnosis {
    let log = read_log(text.as_bytes(), "t", &ReadOptions::default()).unwrap();
    diagnose_loss_log(&log, opts).unwrap()
}

#[test]
fn the_lessons_examples_are_unchanged() {
    let opts = LogOptions {
        lr: Some(0.1),
        stream: StreamChoice::Epoch,
        ..Default::default()
    };
    let d = diagnose_text("0.8\n0.5\n0.4\n0.38\n0.37\n", &opts);
    assert_eq!(d.verdict.state, State::Healthy, "{}", d.render());
    assert_eq!(d.verdict.suggestion.action, Action::Keep);
    assert_eq!(d.verdict.suggestion.new_lr, Some(0.1));
    let opts = LogOptions { lr: Some(1.0), ..opts };
    let d = diagnose_text("0.8\n1.5\n3.2\n8.7\nNaN\n", &opts);
    let v = &d.verdict;
    assert_eq!(v.state, State::Diverging, "{}", d.render());
    assert_eq!(v.reason, Reason::NonfiniteAfterDivergence);
    assert_eq!(v.suggestion.new_lr, Some(0.01));
    assert_eq!(v.suggestion.alt_lr, Some(0.001));
    assert!(
        d.render()
            .contains("0.8 -> 1.5 -> 3.2 -> 8.7 -> NaN; roll back and use 0.01"),
        "{}",
        d.render()
    );
}

#[test]
fn a_plain_list_of_ten_epoch_losses_gets_a_verdict_under_auto() {
    let d = diagnose_text(
        "2.1\n1.4\n1.1\n0.93\n0.82\n0.74\n0.69\n0.65\n0.62\n0.60\n",
        &LogOptions::default(),
    );
    assert_eq!(d.verdict.state, State::Healthy, "{}", d.render());
    assert!(d.verdict.confidence < Confidence::High);
    assert!(
        d.render().contains("confidence: medium (from 10 finite losses)"),
        "{}",
        d.render()
    );
}

#[test]
fn sparse_logs_from_five_points() {
    // Logged every 100 steps: 8 points.
    let v = judge(
        &points(&[2.3, 1.6, 1.2, 1.0, 0.9, 0.85, 0.8, 0.78], 100.0, None),
        &[],
        None,
        None,
    );
    assert_eq!(v.state, State::Healthy, "{v}");
    assert_eq!(v.confidence, Confidence::Low);
    let v = judge_losses(&[2.3, 1.6, 1.2, 1.0]);
    assert_eq!(v.state, State::Insufficient, "{v}");
}

#[test]
fn training_loss_rising_after_its_minimum_is_diverging() {
    let v = judge_losses(&[2.0, 1.2, 0.9, 0.8, 0.85, 0.95, 1.1, 1.3]);
    assert_eq!(v.state, State::Diverging, "{v}");
    assert_eq!(v.reason, Reason::RisingAfterMinimum);
    assert!(v.suggestion.text.contains("lower the rate 10x"), "{v}");
}

#[test]
fn verdicts_are_shift_and_scale_free() {
    // A negative log-likelihood falling 0.1-0.3 per epoch, shifted and scaled.
    let base = [-0.5, -0.8, -1.05, -1.25, -1.4, -1.52, -1.62, -1.7, -1.76, -1.8];
    let reference = judge_losses(&base);
    assert_eq!(reference.state, State::Healthy, "{reference}");
    for (scale, shift) in [(1.0, 3.0), (1000.0, 0.0), (1e-4, 0.0), (1.0, -100.0)] {
        let y: Vec<f64> = base.iter().map(|v| v * scale + shift).collect();
        let v = judge_losses(&y);
        assert_eq!(
            (v.state, v.reason),
            (reference.state, reference.reason),
            "x{scale} +{shift}: {v}"
        );
    }
}

#[test]
fn noise_changes_the_confidence_not_the_verdict() {
    // The same curve at the noise of batch sizes 512 down to 8, logged every step.
    for (rel, seed) in [(0.01, 1), (0.05, 2), (0.15, 3), (0.3, 4)] {
        let v = judge_losses(&decay(2000, 800.0, 0.3, rel, seed));
        assert_eq!(v.state, State::Healthy, "noise {rel}: {v}");
    }
    // Converged at a constant rate: a plateau at every noise level.
    for (rel, seed) in [(0.01, 1), (0.1, 2), (0.3, 3)] {
        let v = judge_losses(&decay(3000, 100.0, 0.3, rel, seed));
        assert_eq!(v.state, State::Plateau, "noise {rel}: {v}");
    }
}

#[test]
fn a_slow_linear_decrease_is_slow_with_or_without_noise() {
    // The issue: "slow: raise lr" noise-free, "plateau: decay lr" with 4 % multiplicative
    // noise. The same trend must get the same verdict at 0, 2, 4 and 8 % noise, whatever the
    // noise's draw, logged every step or every 10 steps.
    for rel in [0.0, 0.02, 0.04, 0.08] {
        for seed in 1..=5 {
            let mut r = Lcg(seed);
            let y: Vec<f64> = (0..1000)
                .map(|t| (2.3 - 0.0005 * t as f64) * (1.0 + rel * r.next()))
                .collect();
            let v = judge_losses(&y);
            assert_eq!(v.state, State::Slow, "noise {rel}, seed {seed}: {v}");
            assert_eq!(v.suggestion.action, Action::Raise, "noise {rel}, seed {seed}: {v}");
            let sparse: Vec<f64> = y.iter().skip(9).step_by(10).copied().collect();
            let v = judge(&points(&sparse, 10.0, None), &[], None, None);
            assert_eq!(v.state, State::Slow, "every 10, noise {rel}, seed {seed}: {v}");
        }
    }
}

#[test]
fn a_transient_spike_is_a_finding_not_a_divergence() {
    let mut y = decay(600, 100.0, 0.3, 0.02, 7);
    for (i, v) in y.iter_mut().enumerate().skip(300).take(20) {
        *v *= 1.0 + 4.0 * (-((i - 300) as f64) / 5.0).exp();
    }
    let v = judge_losses(&y);
    assert_eq!(v.state, State::Healthy, "{v}");
    assert!(v.findings.iter().any(|f| f.contains("spike")), "{:?}", v.findings);
    // Replayed live too: the spike falls back within the horizon, so no divergence is shown
    // (with --auto-lr that would have been a 10x cut for nothing).
    let text: String = std::iter::once("step,loss,lr\n".to_string())
        .chain(y.iter().enumerate().map(|(i, v)| format!("{i},{v},0.1\n")))
        .collect();
    let d = diagnose_text(&text, &LogOptions::default());
    assert!(d.changes.iter().all(|c| c.state < State::Diverging), "{:?}", d.changes);
    assert_eq!(d.verdict.state, State::Healthy, "{}", d.verdict);
}

#[test]
fn a_smooth_curve_of_epoch_means_through_ln_2_is_not_dead() {
    // A 10-class net's epoch means on their way down pass 0.69 with no minibatch noise.
    let v = judge_losses(&[2.3, 1.5, 1.1, 0.9, 0.8, 0.75, 0.72, 0.70, 0.69, 0.68]);
    assert_eq!(v.state, State::Healthy, "{v}");
    // A dead binary classifier sits there flat.
    let v = judge_losses(&[0.9, 1.4, 0.75, 0.6932, 0.6931, 0.6932, 0.6931, 0.6931, 0.6932, 0.6931]);
    assert_eq!(v.reason, Reason::DeadNetwork, "{v}");
}

#[test]
fn overfitting_is_its_own_finding() {
    let train = [1.5, 0.9, 0.7, 0.55, 0.45, 0.37, 0.3, 0.25, 0.21, 0.18];
    let val_loss = [1.4, 1.0, 0.85, 0.8, 0.82, 0.86, 0.91, 0.97, 1.04, 1.1];
    let p = points(&train, 1.0, Some(1e-3));
    let val: Vec<ValPoint> = val_loss
        .iter()
        .enumerate()
        .map(|(i, v)| ValPoint {
            x: i as f64 + 1.0,
            epoch: Some(i as f64 + 1.0),
            loss: *v,
        })
        .collect();
    let v = judge(&p, &val, None, None);
    assert_eq!(v.reason, Reason::Overfit, "{v}");
    assert_eq!(v.overfitting_since, Some(4.0));
    assert!(v.suggestion.text.contains("overfitting since epoch 4"), "{v}");
    // Without the validation losses the same training curve is simply healthy.
    assert_eq!(judge(&p, &[], None, None).state, State::Healthy);
}

#[test]
fn a_dead_network_at_chance_is_never_healthy() {
    let mut r = Lcg(5);
    let mut y = vec![2.31, 2.2, 2.0, 6.0, 9.0, 5.0, 3.0];
    y.extend((0..300).map(|_| 2.3026 * (1.0 + 0.005 * r.next())));
    let v = judge(&points(&y, 1.0, Some(10.0)), &[], None, Some(10));
    assert!(v.state >= State::Diverging, "{v}");
    assert_eq!(v.suggestion.new_lr, Some(1.0));
    // A binary classifier bouncing around ln 2 is not learning.
    let y: Vec<f64> = (0..200).map(|_| 0.6931 * (1.0 + 0.05 * r.next())).collect();
    let v = judge_losses(&y);
    assert!(v.state != State::Healthy, "{v}");
    // Told it is binary: bouncing at chance (+-10 %) is a rate too high to learn, not a slow one.
    let y: Vec<f64> = (0..200).map(|_| 0.6931 * (1.0 + 0.1 * r.next())).collect();
    let v = judge(&points(&y, 1.0, Some(0.5)), &[], None, Some(2));
    assert_eq!(v.state, State::Oscillating, "{v}");
    assert_eq!(v.suggestion.new_lr, Some(0.05));
}

#[test]
fn advice_names_no_rate_the_log_lacks_and_stays_sane() {
    let v = judge_losses(&[1.0, 0.9, 1.5, 3.0, 7.0, 20.0, f64::NAN]);
    assert_eq!(v.state, State::Diverging, "{v}");
    assert!(v.suggestion.new_lr.is_none());
    assert!(
        v.suggestion.text.contains("lower the rate 10x") && !v.suggestion.text.contains("lr "),
        "{v}"
    );
    let v = judge(
        &points(&[1.0, 0.9, 1.5, 3.0, 7.0, 20.0, f64::NAN], 1.0, Some(1e308)),
        &[],
        None,
        None,
    );
    assert!(v.suggestion.text.contains("extraordinary"), "{v}");
    let v = judge(&points(&[2.3; 50], 1.0, Some(1e-319)), &[], None, None);
    assert!(v.suggestion.text.contains("extraordinary"), "{v}");
}

#[test]
fn a_step_down_after_a_rate_drop_is_healthy() {
    let mut p = Vec::new();
    for i in 0..300 {
        let (lr, level) = if i < 200 { (0.1, 0.6) } else { (0.01, 0.4) };
        let y = level + 1.5 * (-(i as f64) / 30.0).exp() + 0.01 * ((i * 37 % 11) as f64 / 11.0 - 0.5);
        p.push(LogPoint {
            x: i as f64 + 1.0,
            loss: y,
            lr: Some(lr),
        });
    }
    let v = judge(&p, &[], None, None);
    assert_eq!(v.state, State::Healthy, "{v}");
    assert!(
        v.findings.iter().any(|f| f.contains("lr dropped 0.1 -> 0.01")),
        "{:?}",
        v.findings
    );
}

#[test]
fn a_long_smooth_run_shows_a_handful_of_state_changes() {
    let y: Vec<f64> = (0..200_000)
        .map(|t| 2.0 * (-(t as f64) / 20_000.0).exp() + 0.3)
        .collect();
    let text: String = y.iter().map(|v| format!("{v}\n")).collect();
    let d = diagnose_text(&text, &LogOptions::default());
    let changes = d.changes.len() + d.changes_omitted;
    assert!(changes <= 5, "{changes} changes:\n{}", d.render());
    assert!(d.trajectory.len() <= 100);
    assert!(d.render().len() < 10_000);
}

#[test]
fn a_step_down_without_a_rate_column_is_healthy() {
    // Step decay at epoch 30 of 45, logged per epoch without the rate (CS231n's "x0.1 every
    // 20-30 epochs"): the loss settles, steps down, settles again.
    let y: Vec<f64> = (0..45)
        .map(|e| {
            let e = e as f64;
            let base = 0.9 + 1.4 * (-e / 5.0).exp();
            if e >= 30.0 {
                base - 0.35
            } else {
                base
            }
        })
        .collect();
    let v = judge_losses(&y);
    assert_eq!(v.state, State::Healthy, "{v}");
    assert_eq!(v.reason, Reason::Converged, "{v}");
}

#[test]
fn a_long_noisy_slowly_falling_pretraining_curve_is_healthy() {
    // Power-law LM pretraining (loss ~ 2.5 + 8 t^-0.3), 20,000 steps, 3 % noise, logged every step
    // and every 100 steps.
    let mut r = Lcg(11);
    let y: Vec<f64> = (1..=20_000)
        .map(|t| (2.5 + 8.0 * (t as f64).powf(-0.3)) * (1.0 + 0.03 * r.next()))
        .collect();
    assert_eq!(judge_losses(&y).state, State::Healthy, "{}", judge_losses(&y));
    let sparse: Vec<f64> = y.iter().step_by(100).copied().collect();
    let v = judge(&points(&sparse, 100.0, None), &[], None, None);
    assert_eq!(v.state, State::Healthy, "{v}");
}

#[test]
fn with_the_classes_given_chance_level_is_never_healthy() {
    // Still falling, from 4.0 (a blow-up before the log) down to ln 10.
    let y: Vec<f64> = (0..400).map(|t| 2.3 + 1.7 * (-(t as f64) / 100.0).exp()).collect();
    let v = judge(&points(&y, 1.0, Some(1e-5)), &[], None, Some(10));
    assert_eq!(v.state, State::Slow, "{v}");
    assert_eq!(v.suggestion.new_lr, Some(1e-4));
    // Without the class count the same curve is judged on its shape alone: still falling.
    let v = judge(&points(&y, 1.0, Some(1e-5)), &[], None, None);
    assert_eq!(v.state, State::Healthy, "{v}");
}

#[test]
fn any_text_is_read_or_refused_without_a_panic() {
    // Random logs from the characters logs are made of: every one is either an error or a
    // diagnosis, under every stream choice.
    const ALPHABET: &[u8] = b"0123456789.,-e+\n\n\t ;:|/[]{}\"'lossteplrvaxnNIfi_ ";
    let mut r = Lcg(99);
    for case in 0..3000 {
        let len = 1 + (case % 400);
        let text: String = (0..len)
            .map(|_| ALPHABET[((r.next() + 1.0) * 0.5 * ALPHABET.len() as f64) as usize % ALPHABET.len()] as char)
            .collect();
        // Half the cases: rows of wild numbers (NaN, inf, 1e300, negative, repeated).
        let rows: String = (0..len)
            .map(|i| {
                let u = r.next();
                let v = match case % 7 {
                    0 => f64::NAN,
                    1 => 1e300 * u,
                    2 => -u,
                    3 => 1.0,
                    _ => (u * 10.0).exp(),
                };
                let v = if (i * 7 + case) % 13 == 0 { f64::INFINITY } else { v };
                format!("{},{v},{},{}\n", i * (1 + case % 3), v * 0.9, 10f64.powi(case % 9 - 4))
            })
            .collect();
        let text = match case % 8 {
            4..=7 => format!("step,loss,val_loss,lr\n{rows}"),
            0 => format!("step,loss,val_loss,lr\n{text}"),
            1 => format!("{{\"loss\": {text}"),
            2 => format!("step 1 | loss {text}"),
            _ => text,
        };
        if let Ok(log) = read_log(text.as_bytes(), "fuzz", &ReadOptions::default()) {
            for stream in [StreamChoice::Auto, StreamChoice::Step, StreamChoice::Epoch] {
                for classes in [None, Some(10)] {
                    let opts = LogOptions {
                        stream,
                        num_classes: classes,
                        lr: None,
                    };
                    let d = diagnose_loss_log(&log, &opts).expect("valid options");
                    assert!(d.render().len() < 20_000);
                }
            }
        }
    }
}

/// A 10-class classifier's loss logged every 10 steps after it blew up in its first steps:
/// `first` at the first line, then back to `level` (within `back` lines) with multiplicative
/// noise `rel`.
fn blown_up_sparse(first: f64, level: f64, back: f64, rel: f64, seed: u64) -> Vec<f64> {
    let mut r = Lcg(seed);
    let mut y = vec![first, 0.5 * first];
    y.extend((0..44).map(|t| (level + 2.0 * (-(t as f64) / back).exp()) * (1.0 + rel * r.next())));
    y
}

#[test]
fn a_sparse_log_that_starts_after_a_blow_up_is_never_healthy() {
    // Sparse logs whose first line is already after the blow-up (15.6 at step 10, then
    // bouncing around ln 10 with half its level as noise, or sitting just above it): the fall
    // from the first line is recovery, not learning.
    for seed in 1..=5 {
        let v = judge(
            &points(&blown_up_sparse(15.6, 2.3, 4.0, 0.6, seed), 10.0, None),
            &[],
            None,
            None,
        );
        assert_eq!(v.state, State::Diverging, "seed {seed}: {v}");
        assert!(v.suggestion.text.contains("lower the rate 10x"), "{v}");
        let v = judge(
            &points(&blown_up_sparse(8.5, 2.75, 1.0, 0.05, seed), 10.0, None),
            &[],
            None,
            None,
        );
        assert_eq!(v.state, State::Diverging, "above chance, seed {seed}: {v}");
    }
}

#[test]
fn healthy_curves_through_chance_level_are_not_blow_ups() {
    // An LM or a 100-class net falling through ln 10 on its way down, with the small noise of a
    // learning run: its first line is far above ln 10, and it ends near it.
    let mut r = Lcg(3);
    let lm: Vec<f64> = (0..60)
        .map(|t| (2.1 + 8.3 * (-(t as f64) / 8.0).exp()) * (1.0 + 0.03 * r.next()))
        .collect();
    let v = judge(&points(&lm, 100.0, None), &[], None, None);
    assert!(matches!(v.state, State::Healthy | State::Plateau), "{v}");
    let cifar100: Vec<f64> = (0..20)
        .map(|e| (2.2 + 2.2 * (-(e as f64) / 4.0).exp()) * (1.0 + 0.01 * r.next()))
        .collect();
    let v = judge(&points(&cifar100, 1.0, None), &[], None, None);
    assert!(matches!(v.state, State::Healthy | State::Plateau), "{v}");
    // 12 epochs of a 100-class net from just under ln 100 to a plateau at 2.25 (near ln 10).
    let plateau: Vec<f64> = (0..12)
        .map(|e| (2.25 + 2.2 * (-(e as f64) / 3.0).exp()) * (1.0 + 0.01 * r.next()))
        .collect();
    let v = judge(&points(&plateau, 1.0, None), &[], None, None);
    assert!(matches!(v.state, State::Healthy | State::Plateau), "{v}");
    // A healthy classifier logged every 100 steps, already low at its first line.
    let fast = [0.8, 0.62, 0.47, 0.43, 0.52, 0.5, 0.45, 0.47];
    let v = judge(&points(&fast, 100.0, None), &[], None, None);
    assert!(matches!(v.state, State::Healthy | State::Plateau), "{v}");
}

#[test]
fn a_loss_held_at_chance_by_a_large_rate_is_not_slow() {
    // Stuck at ln 10 with small noise: under a rate of 10 the rate is the cause (lower it);
    // under 1e-4 it has not started to learn (raise it).
    let mut r = Lcg(8);
    let y: Vec<f64> = (0..9).map(|_| 2.31 * (1.0 + 0.01 * r.next())).collect();
    let v = judge(&points(&y, 100.0, Some(10.0)), &[], None, None);
    assert!(v.state >= State::Oscillating, "{v}");
    assert_ne!(v.suggestion.action, Action::Raise, "{v}");
    let v = judge(&points(&y, 100.0, Some(1e-4)), &[], None, None);
    assert_eq!(v.state, State::Slow, "{v}");
    // Single-example losses (batch 1) whose typical value stays at ln 10 while a few lucky
    // examples drag the last values down: not learning, whatever the last three say.
    let mut y: Vec<f64> = (0..20).map(|_| 2.2 * (1.0 + 0.15 * r.next())).collect();
    for i in [8, 13, 16, 18, 19] {
        y[i] = 0.3 * (1.0 + r.next()).max(0.01);
    }
    let v = judge(&points(&y, 100.0, Some(0.1)), &[], None, None);
    assert_ne!(v.state, State::Healthy, "{v}");
}

#[test]
fn a_schedule_that_ran_out_under_a_linear_fall_is_slow() {
    // Warmup then cosine at a rate too small: the loss fell linearly while the rate was high,
    // then settled only because the rate went to zero.
    let n = 400;
    let lr = |t: usize| {
        let t = t as f64;
        if t < 40.0 {
            1e-3 * (t + 1.0) / 40.0
        } else {
            0.5e-3 * (1.0 + (std::f64::consts::PI * (t - 40.0) / 360.0).cos())
        }
    };
    let mut r = Lcg(4);
    let mut level = 2.3;
    let mut slow = Vec::new();
    let mut good = Vec::new();
    let mut good_level = 2.3;
    for t in 0..n {
        level -= 0.6 * lr(t);
        good_level -= (good_level - 0.4) * 30.0 * lr(t);
        let noise = 1.0 + 0.01 * r.next();
        slow.push(LogPoint {
            x: t as f64 + 1.0,
            loss: level * noise,
            lr: Some(lr(t)),
        });
        good.push(LogPoint {
            x: t as f64 + 1.0,
            loss: good_level * noise,
            lr: Some(lr(t)),
        });
    }
    let v = judge(&slow, &[], None, None);
    assert_eq!(v.state, State::Slow, "{v}");
    assert_eq!(v.suggestion.action, Action::Raise, "{v}");
    let v = judge(&good, &[], None, None);
    assert_eq!(v.state, State::Healthy, "{v}");
}

#[test]
fn a_lone_low_point_is_not_a_minimum_to_rise_from() {
    // Logged every 100 steps: one lucky minibatch at 0.31 among 0.42-0.44 is noise.
    let v = judge(
        &points(&[0.8, 0.73, 0.42, 0.31, 0.43, 0.44], 100.0, None),
        &[],
        None,
        None,
    );
    assert!(matches!(v.state, State::Healthy | State::Plateau), "{v}");
    // Rising every epoch since its minimum still is a divergence.
    let v = judge_losses(&[2.0, 1.2, 0.9, 0.8, 0.85, 0.95, 1.1, 1.3]);
    assert_eq!(v.state, State::Diverging, "{v}");
}

#[test]
fn a_verdict_from_nine_points_says_its_confidence() {
    let v = judge(
        &points(&[2.3, 1.7, 1.3, 1.05, 0.9, 0.8, 0.74, 0.7, 0.67], 100.0, None),
        &[],
        None,
        None,
    );
    assert!(
        v.to_string()
            .starts_with("healthy (improving), from 9 points, low confidence"),
        "{v}"
    );
}

#[test]
fn a_flat_noisy_fine_tune_is_no_alarm() {
    // Logged every 100 steps after it converged: 0.45 with 25 % minibatch noise, the first line
    // one of the low ones. Through `stride diagnose` (the live replay included).
    let mut r = Lcg(12);
    let mut text = String::from("step,loss\n");
    for i in 0..16 {
        let v = if i == 0 { 0.36 } else { 0.45 * (1.0 + 0.25 * r.next()) };
        text += &format!("{},{v}\n", 100 * (i + 1));
    }
    let d = diagnose_text(&text, &LogOptions::default());
    assert!(d.verdict.state < State::Oscillating, "{}", d.render());
}

#[test]
fn a_noisy_rise_back_after_a_fall_is_a_divergence() {
    // Every 10 steps, 20 % noise: down from 5,000 to 3,500 by step 170, back up to 5,500. Two
    // bins' medians cannot tell; every point since the minimum can.
    for seed in 1..=5 {
        let mut r = Lcg(seed);
        let y: Vec<f64> = (0..46)
            .map(|t| {
                let t = t as f64;
                let level = if t < 17.0 {
                    5000.0 - 90.0 * t
                } else {
                    3470.0 + 70.0 * (t - 17.0)
                };
                level * (1.0 + 0.2 * r.next())
            })
            .collect();
        let v = judge(&points(&y, 10.0, None), &[], None, None);
        assert_eq!(v.state, State::Diverging, "seed {seed}: {v}");
        // The same noise on a fall that levels off is no rise.
        let mut r = Lcg(seed);
        let y: Vec<f64> = (0..46)
            .map(|t| (3500.0 + 1500.0 * (-(t as f64) / 6.0).exp()) * (1.0 + 0.2 * r.next()))
            .collect();
        let v = judge(&points(&y, 10.0, None), &[], None, None);
        assert!(v.state < State::Oscillating, "levelled off, seed {seed}: {v}");
    }
}

#[test]
fn a_loss_ten_times_its_start_is_diverging_however_noisy() {
    // Blown up from 2.3 to 7-70 after two lines, bouncing between those: the noise it shows is
    // its own blow-up, not a reason to call it flat.
    let y = [2.31, 2.18, 6.9, 69.0, 23.1, 22.8, 68.9, 6.91, 6.93, 69.5, 23.0, 22.9];
    let v = judge_losses(&y);
    assert!(v.state >= State::Diverging, "{v}");
    let mut y: Vec<f64> = vec![6.87, 6.52, 7.08, 7.12];
    let mut r = Lcg(21);
    y.extend((0..96).map(|i| [20.0, 70.0, 200.0][i % 3] * (1.0 + 0.08 * r.next())));
    let v = judge_losses(&y);
    assert!(v.state >= State::Diverging, "{v}");
}

#[test]
fn noisy_healthy_curves_near_chance_levels_are_not_blow_ups() {
    // 30 % minibatch noise: a 1000-class curve whose first line is a noisy one above ln 1000,
    // and a 100-class curve under cosine whose first line is just above ln 100.
    let mut r = Lcg(31);
    let mut y: Vec<f64> = (0..8)
        .map(|t| (2.8 + 4.1 * (-(t as f64) / 2.4).exp()) * (1.0 + 0.3 * r.next()))
        .collect();
    y[0] = 8.5;
    let v = judge(&points(&y, 10.0, None), &[], None, None);
    assert!(v.state < State::Oscillating, "{v}");
    let p: Vec<LogPoint> = (0..100)
        .map(|t| LogPoint {
            x: t as f64 + 1.0,
            loss: (if t == 0 {
                4.96
            } else {
                2.5 + 2.1 * (-(t as f64) / 30.0).exp()
            }) * (1.0 + 0.08 * r.next()),
            lr: Some(0.05 * (1.0 + (std::f64::consts::PI * t as f64 / 100.0).cos())),
        })
        .collect();
    let v = judge(&p, &[], None, None);
    assert!(v.state < State::Oscillating, "{v}");
}

#[test]
fn runs_appended_to_one_log_are_judged_by_the_last() {
    // Keras's CSVLogger(append=True): a run that blew up, then a rerun that trains well.
    let text = "epoch,loss,val_loss\n0,2.3,2.3\n1,4.0,4.1\n2,6.5,6.6\n3,9.1,9.0\n4,12.0,12.2\n\
                0,2.3,2.2\n1,1.4,1.5\n2,1.0,1.1\n3,0.8,0.9\n4,0.7,0.8\n5,0.65,0.76\n";
    let d = diagnose_text(text, &LogOptions::default());
    assert_eq!(d.verdict.state, State::Healthy, "{}", d.verdict);
    assert!(
        d.verdict.findings.iter().any(|f| f.contains("2 runs")),
        "{:?}",
        d.verdict.findings
    );
}

#[test]
fn a_short_steady_fall_without_a_rate_is_improving_with_a_note_and_slow_with_one() {
    // 13 losses printed every 20 batches at the start of an LLM pretraining (no rate logged).
    let y: Vec<f64> = (0..13).map(|i| 10.98 - 0.2 * i as f64).collect();
    let v = judge(&points(&y, 20.0, None), &[], None, None);
    assert_eq!(v.state, State::Healthy, "{v}");
    assert!(
        v.findings.iter().any(|f| f.contains("initial pace")),
        "{:?}",
        v.findings
    );
    // The same fall under a constant rate the log records: the rate is small.
    let v = judge(&points(&y, 20.0, Some(1e-5)), &[], None, None);
    assert_eq!(v.state, State::Slow, "{v}");
}

#[test]
fn a_sustained_rise_under_a_decaying_rate_is_diverging_a_small_one_at_the_end_is_not() {
    let n = 400;
    let lr = |i: usize| 0.1 * 0.5 * (1.0 + (std::f64::consts::PI * i as f64 / n as f64).cos()) + 1e-4;
    let mut r = Lcg(5);
    let with = |y: Vec<f64>| -> Vec<LogPoint> {
        y.iter()
            .enumerate()
            .map(|(i, l)| LogPoint {
                x: i as f64 + 1.0,
                loss: *l,
                lr: Some(lr(i)),
            })
            .collect()
    };
    let base = |i: usize| 2.0 * (-3.0 * i as f64 / n as f64).exp() + 0.3;
    // Rising steadily from 60 % of the run on, by about a quarter of the progress.
    let rise: Vec<f64> = (0..n)
        .map(|i| (base(i) + 1.5 * (i as f64 / n as f64 - 0.6).max(0.0)) * (1.0 + 0.03 * r.next()))
        .collect();
    let v = judge(&with(rise), &[], None, None);
    assert_eq!(v.state, State::Diverging, "{v}");
    // A noisy plateau whose last two bins creep up a little while the rate goes to 0.
    let creep: Vec<f64> = (0..n)
        .map(|i| (base(i) + 0.04 * (i as f64 / n as f64 - 0.93).max(0.0) / 0.07) * (1.0 + 0.03 * r.next()))
        .collect();
    let v = judge(&with(creep), &[], None, None);
    assert!(v.state < State::Oscillating, "{v}");
}
