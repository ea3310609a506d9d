//! `stride sharpness`: the top Hessian eigenvalue of an MLP's loss and the largest stable
//! learning rate `2 / lambda`, at the initial weights or after some SGD steps.

use candle_nn::VarMap;
use stride_data::{Batcher, Loaded};
use stride_model::Activation;
use stride_optim::OptimizerKind;
use stride_train::{
    estimate_sharpness, format_lr, Action, Callback, Curvature, HvpScheme, SharpnessConfig, SharpnessEstimate, StepEnd,
    Trainer,
};

use crate::args::{DataArgs, DeviceArgs, NetArgs};
use crate::Error;

/// Options of `stride sharpness`.
#[derive(Debug, Clone, clap::Args)]
pub struct SharpnessArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub data: DataArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub net: NetArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub device: DeviceArgs,
    /// Threads for the tensor kernels (default: the cores this process may use).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Training examples in the fixed batch the Hessian is taken on.
    #[arg(long, default_value_t = 1024)]
    pub batch: usize,
    /// Plain SGD steps (batch 128, rate --lr) before estimating; 0 estimates at the initial weights.
    #[arg(long, default_value_t = 0)]
    pub steps: u64,
    /// Rate of those steps, and the rate compared with the limit.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.1)]
    pub lr: f64,
    /// Finite-difference step relative to the weight norm.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-3)]
    pub rel_step: f64,
    /// Use forward differences (one gradient per iteration) instead of central ones.
    #[arg(long)]
    pub forward: bool,
    /// Most power iterations.
    #[arg(long, default_value_t = 20)]
    pub max_iters: usize,
    /// Relative tolerance of the power iteration.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-3)]
    pub tol: f64,
    /// Curvature: gauss-newton (default; insensitive to the step on ReLU networks) or hessian
    /// (finite differences of gradients).
    #[arg(long, default_value = "gauss-newton")]
    pub curvature: String,
    /// Also estimate with the step halved and doubled, and print how much the estimate moves.
    #[arg(long)]
    pub check_step: bool,
}

/// Stops the run after a number of steps.
struct StopAfter(u64);

impl Callback for StopAfter {
    fn on_step_end(&mut self, s: &StepEnd) -> stride_train::Result<Action> {
        Ok(if s.step >= self.0 {
            Action::Stop(format!("{} steps done", self.0))
        } else {
            Action::Continue
        })
    }
}

/// Runs `stride sharpness` and returns the text it prints.
pub fn run(args: &SharpnessArgs) -> Result<String, Error> {
    crate::positive("--lr", args.lr)?;
    crate::positive("--rel-step", args.rel_step)?;
    crate::positive("--tol", args.tol)?;
    args.net.check()?;
    let device = args.device.device()?;
    if let Some(threads) = args.threads {
        crate::set_threads(threads)?;
    }
    let Loaded { splits, source } = args.data.load()?;
    let arch = args.net.architecture_for(&splits.train)?;
    let activation: Activation = args.net.activation()?;
    let varmap = VarMap::new();
    let model = args.net.network(&arch, &varmap, &device)?;
    let mut out = format!("data: {source}\nmodel: {arch} ({activation})\n");
    if args.steps > 0 {
        let epochs = args.steps.div_ceil(splits.train.len().div_ceil(128) as u64) as usize;
        let history = Trainer::builder()
            .epochs(epochs)
            .lr(args.lr)
            .seed(args.net.seed)
            .callback(StopAfter(args.steps))
            .build()?
            .fit_with(
                &model,
                args.net
                    .optimizer(OptimizerKind::Sgd, &arch, &varmap, args.lr, None, None)?
                    .as_mut(),
                &splits.train,
                None,
            )?;
        out += &format!(
            "after {} SGD steps at lr {} (last loss {:.4})\n",
            history.step_losses.len(),
            format_lr(args.lr),
            history.step_losses.last().copied().unwrap_or(f64::NAN)
        );
    } else {
        out += "at the initial weights\n";
    }
    let n = args.batch.clamp(1, splits.train.len());
    let order = Batcher::new(splits.train.len(), n, args.net.seed)?.order(0);
    // Only the batch's images are converted, not the whole training set.
    let (xb, yb) = splits.train.gather_tensors(&order[..n], &device)?;
    let vars = varmap.all_vars();
    let config = SharpnessConfig {
        max_iters: args.max_iters,
        tol: args.tol,
        rel_step: args.rel_step,
        scheme: if args.forward {
            HvpScheme::Forward
        } else {
            HvpScheme::Central
        },
        seed: args.net.seed,
        curvature: match args.curvature.as_str() {
            "hessian" => Curvature::Hessian,
            "gauss-newton" | "ggn" => Curvature::GaussNewton,
            other => {
                return Err(Error::Usage(format!(
                    "unknown curvature {other:?}: expected gauss-newton or hessian"
                )))
            }
        },
    };
    let e = estimate_sharpness(&model, &vars, &xb, &yb, &config)?;
    out += &format!(
        "sharpness ({}) on {n} training examples: {}\n",
        args.curvature,
        describe(&e)
    );
    let limit = 2.0 / e.lambda;
    out += &format!(
        "plain SGD/GD is stable below lr 2/lambda = {}; lr {} is {:.2}x that limit\n",
        format_lr(round3(limit)),
        format_lr(args.lr),
        args.lr / limit
    );
    out += "(with momentum beta the full-batch limit is 2(1+beta)/lambda; small minibatches settle lower)\n";
    if args.check_step {
        for factor in [0.5, 2.0] {
            let c = SharpnessConfig {
                rel_step: args.rel_step * factor,
                ..config.clone()
            };
            let other = estimate_sharpness(&model, &vars, &xb, &yb, &c)?;
            out += &format!(
                "step x{factor}: lambda {:.4} ({:+.3}%)\n",
                other.lambda,
                100.0 * (other.lambda / e.lambda - 1.0)
            );
        }
    }
    Ok(out)
}

fn describe(e: &SharpnessEstimate) -> String {
    format!(
        "lambda_max = {:.4} ({} iterations{}, {} gradients, h = {:.3e}, {:.2} s)",
        e.lambda,
        e.iterations,
        if e.converged { "" } else { ", not converged" },
        e.gradient_evals,
        e.step,
        e.seconds
    )
}

fn round3(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        let p = 10f64.powi(2 - x.log10().floor() as i32);
        (x * p).round() / p
    } else {
        x
    }
}
