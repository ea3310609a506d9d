//! Every schedule against rates recorded from PyTorch's `lr_scheduler`
//! (`fixtures/schedules/gen_schedules.py`): each case is built from its
//! PyTorch keyword arguments and from its CLI spec, and every step's rate
//! (and momentum / beta1, where cycled) must match to 1e-5 relative. `wsd` and
//! `linear`, which PyTorch lacks, are checked the same way against Hugging Face
//! `transformers`' own lambdas (`fixtures/schedules/gen_wsd.py`).

use serde_json::Value;

use super::test_util::assert_close;
use super::*;

const FIXTURE: &str = include_str!("../../fixtures/schedules/schedules.json");
const REL: f64 = 1e-5;
/// Rates that PyTorch computes as ~1e-18 instead of 0 (cosine at its end).
const ABS: f64 = 1e-12;

fn cases() -> Vec<Value> {
    let all: Value = serde_json::from_str(FIXTURE).unwrap();
    all["cases"].as_array().unwrap().clone()
}

fn f(p: &Value, key: &str, default: f64) -> f64 {
    p.get(key).map_or(default, |v| v.as_f64().unwrap())
}

fn u(p: &Value, key: &str, default: u64) -> u64 {
    p.get(key).map_or(default, |v| v.as_u64().unwrap())
}

fn s<'a>(p: &'a Value, key: &str, default: &'a str) -> &'a str {
    p.get(key).map_or(default, |v| v.as_str().unwrap())
}

fn b(p: &Value, key: &str, default: bool) -> bool {
    p.get(key).map_or(default, |v| v.as_bool().unwrap())
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// The schedule a case describes, built from PyTorch's keyword arguments.
fn from_params(case: &Value) -> Box<dyn Schedule> {
    let p = &case["params"];
    let base = case["base_lr"].as_f64().unwrap();
    match case["kind"].as_str().unwrap() {
        "onecycle" => Box::new(
            OneCycle {
                pct_start: f(p, "pct_start", 0.3),
                anneal: if s(p, "anneal_strategy", "cos") == "linear" {
                    Anneal::Linear
                } else {
                    Anneal::Cos
                },
                div_factor: f(p, "div_factor", 25.0),
                final_div_factor: f(p, "final_div_factor", 1e4),
                three_phase: b(p, "three_phase", false),
                cycle_momentum: b(p, "cycle_momentum", true),
                base_momentum: f(p, "base_momentum", 0.85),
                max_momentum: f(p, "max_momentum", 0.95),
                ..OneCycle::new(f(p, "max_lr", 0.0), u(p, "total_steps", 0)).unwrap()
            }
            .validate()
            .unwrap(),
        ),
        "cyclic" => {
            let up = u(p, "step_size_up", 2000);
            Box::new(
                Cyclic {
                    step_size_up: up,
                    step_size_down: u(p, "step_size_down", up),
                    mode: match s(p, "mode", "triangular") {
                        "triangular2" => CyclicMode::Triangular2,
                        "exp_range" => CyclicMode::ExpRange,
                        _ => CyclicMode::Triangular,
                    },
                    gamma: f(p, "gamma", 1.0),
                    cycle_momentum: b(p, "cycle_momentum", true),
                    base_momentum: f(p, "base_momentum", 0.8),
                    max_momentum: f(p, "max_momentum", 0.9),
                    ..Cyclic::new(f(p, "base_lr", 0.0), f(p, "max_lr", 0.0)).unwrap()
                }
                .validate()
                .unwrap(),
            )
        }
        "restarts" => {
            let (t0, mult) = (u(p, "T_0", 0), u(p, "T_mult", 1));
            Box::new(CosineWarmRestarts::new(base, t0, mult, f(p, "eta_min", 0.0)).unwrap())
        }
        "step" => Box::new(StepDecay::new(base, f(p, "gamma", 0.1), u(p, "step_size", 0)).unwrap()),
        "multistep" => {
            let at = p["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap())
                .collect();
            Box::new(MultiStep::new(base, f(p, "gamma", 0.1), at).unwrap())
        }
        "exponential" => Box::new(Exponential::new(base, f(p, "gamma", 0.0)).unwrap()),
        "cosine" => Box::new(CosineAnnealing::new(base, u(p, "T_max", 0), f(p, "eta_min", 0.0)).unwrap()),
        "linear" => {
            let (start, end) = (f(p, "start_factor", 1.0 / 3.0), f(p, "end_factor", 1.0));
            Box::new(LinearWarmup::new(base, start, end, u(p, "total_iters", 5)).unwrap())
        }
        "poly" => Box::new(Polynomial::new(base, u(p, "total_iters", 5), f(p, "power", 1.0)).unwrap()),
        // SequentialLR([LinearLR(start_factor=0.1, total_iters=5), CosineAnnealingLR(T_max=20)], milestones=[5])
        "sequential" => {
            let warm = LinearWarmup::new(base, 0.1, 1.0, 5).unwrap();
            let cos = CosineAnnealing::new(base, 20, 0.0).unwrap();
            Box::new(Sequential::new(vec![Box::new(warm), Box::new(cos)], vec![5]).unwrap())
        }
        // ChainedScheduler([LinearLR(start_factor=0.2, total_iters=4), ExponentialLR(gamma=0.9)])
        "chained" => {
            let warm = LinearWarmup::new(1.0, 0.2, 1.0, 4).unwrap();
            let exp = Exponential::new(1.0, 0.9).unwrap();
            Box::new(Chained::new(base, vec![Box::new(warm), Box::new(exp)]).unwrap())
        }
        other => panic!("unknown fixture kind {other}"),
    }
}

fn plateau_config(p: &Value) -> PlateauConfig {
    let d = PlateauConfig::default();
    PlateauConfig {
        mode: if s(p, "mode", "min") == "max" {
            PlateauMode::Max
        } else {
            PlateauMode::Min
        },
        factor: f(p, "factor", d.factor),
        patience: u(p, "patience", d.patience),
        threshold: f(p, "threshold", d.threshold),
        threshold_mode: if s(p, "threshold_mode", "rel") == "abs" {
            ThresholdMode::Abs
        } else {
            ThresholdMode::Rel
        },
        cooldown: u(p, "cooldown", d.cooldown),
        min_lr: f(p, "min_lr", d.min_lr),
        eps: f(p, "eps", d.eps),
    }
}

/// Compares `lr` (and `momentum`) of a schedule with a closed form against the case.
fn check_schedule(name: &str, how: &str, lr: &dyn Fn(u64) -> f64, momentum: &dyn Fn(u64) -> Option<f64>, case: &Value) {
    let lrs = floats(&case["lr"]);
    let moms = case["momentum"].as_array().map(|_| floats(&case["momentum"]));
    for (t, &want) in lrs.iter().enumerate() {
        let t = t as u64;
        assert_close(lr(t), want, REL, ABS, &format!("{name} ({how}) lr({t})"));
        match &moms {
            Some(m) => {
                let got = momentum(t).unwrap_or(f64::NAN);
                assert_close(got, m[t as usize], REL, 0.0, &format!("{name} ({how}) momentum({t})"));
            }
            None => assert_eq!(momentum(t), None, "{name} ({how}) momentum({t})"),
        }
    }
}

#[test]
fn closed_forms_match_pytorch() {
    let mut checked = 0;
    for case in cases().iter().filter(|c| c["kind"] != "plateau") {
        let name = format!("{}/{}", case["kind"].as_str().unwrap(), case["name"].as_str().unwrap());
        let direct = from_params(case);
        check_schedule(&name, "params", &|t| direct.lr(t), &|t| direct.momentum(t), case);
        let spec = case["spec"].as_str().unwrap();
        let parsed = parse_schedule(spec, case["base_lr"].as_f64().unwrap()).unwrap();
        assert_eq!(parsed.unit, ScheduleUnit::Step, "{spec}");
        check_schedule(&name, spec, &|t| parsed.lr(t), &|t| parsed.momentum(t), case);
        checked += 1;
    }
    assert_eq!(checked, 24);
}

#[test]
fn plateau_matches_pytorch() {
    let mut checked = 0;
    for case in cases().iter().filter(|c| c["kind"] == "plateau") {
        let name = case["name"].as_str().unwrap();
        let base = case["base_lr"].as_f64().unwrap();
        let metrics = floats(&case["metrics"]);
        let lrs = floats(&case["lr"]);
        let mut direct = ReduceLrOnPlateau::new(base, plateau_config(&case["params"])).unwrap();
        let spec = case["spec"].as_str().unwrap();
        let mut parsed = parse_schedule(spec, base).unwrap();
        assert_eq!(parsed.unit, ScheduleUnit::Epoch, "{spec}");
        assert_eq!(parsed.plateau.as_ref().map(|p| p.config), Some(direct.config), "{spec}");
        for (epoch, (&m, &want)) in metrics.iter().zip(&lrs).enumerate() {
            direct.step(m);
            // PyTorch's eps and min_lr act on the absolute rate; the direct rule holds it exactly.
            assert_close(direct.lr(), want, REL, 0.0, &format!("{name} lr after epoch {epoch}"));
            let epoch = epoch as u64;
            parsed.observe_metric(epoch, m);
            assert_close(
                parsed.lr(epoch + 1),
                want,
                REL,
                0.0,
                &format!("{spec}: lr after epoch {epoch}"),
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn fixture_covers_what_the_issue_asks() {
    let names: Vec<String> = cases()
        .iter()
        .map(|c| format!("{}/{}", c["kind"].as_str().unwrap(), c["name"].as_str().unwrap()))
        .collect();
    for needed in [
        "onecycle/cos_two_phase",
        "onecycle/cos_three_phase",
        "onecycle/linear_two_phase",
        "onecycle/linear_three_phase",
        "cyclic/triangular",
        "cyclic/triangular2",
        "cyclic/exp_range",
        "restarts/t_mult_1",
        "restarts/t_mult_2",
        "plateau/u1",
    ] {
        assert!(names.iter().any(|n| n == needed), "missing fixture {needed}");
    }
}

const WSD_FIXTURE: &str = include_str!("../../fixtures/schedules/wsd.json");

/// The schedule a `wsd.json` case describes, built from `transformers`' keyword arguments.
fn wsd_from_params(case: &Value) -> Wsd {
    let p = &case["params"];
    let base = case["base_lr"].as_f64().unwrap();
    let warmup = u(p, "num_warmup_steps", 0);
    if case["kind"] == "linear" {
        return Wsd::linear_to_zero(base, u(p, "num_training_steps", 0), warmup).unwrap();
    }
    let decay = u(p, "num_decay_steps", 0);
    let cooldown = match s(p, "decay_type", "") {
        "1-sqrt" => Cooldown::OneMinusSqrt,
        _ => Cooldown::Linear,
    };
    Wsd {
        eta_min: f(p, "min_lr_ratio", 0.0) * base,
        ..Wsd::new(
            base,
            warmup + u(p, "num_stable_steps", 0) + decay,
            warmup,
            decay,
            cooldown,
        )
        .unwrap()
    }
    .validate()
    .unwrap()
}

#[test]
fn wsd_and_linear_match_transformers() {
    let all: Value = serde_json::from_str(WSD_FIXTURE).unwrap();
    let mut checked = 0;
    for case in all["cases"].as_array().unwrap() {
        let name = format!("{}/{}", case["kind"].as_str().unwrap(), case["name"].as_str().unwrap());
        let direct = wsd_from_params(case);
        check_schedule(&name, "params", &|t| direct.lr(t), &|t| direct.momentum(t), case);
        let spec = case["spec"].as_str().unwrap();
        let parsed = parse_schedule(spec, case["base_lr"].as_f64().unwrap()).unwrap();
        check_schedule(&name, spec, &|t| parsed.lr(t), &|t| parsed.momentum(t), case);
        checked += 1;
    }
    assert_eq!(checked, 6);
}
