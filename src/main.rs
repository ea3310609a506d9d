//! The `stride` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Write;
use stride::cli::TrainArgs;
use stride::diagnose::{diagnose_path, write_report, LogOptions, StreamArg};

use stride::optim::schedule::{parse_schedule, preview, render_ascii_plot, ScheduleUnit};

/// Train neural networks with the learning rate in view.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Warnings and errors only, no progress bars (what goes to stdout is unchanged).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an MLP on MNIST or Fashion-MNIST.
    Train(Box<TrainArgs>),
    /// Preview a learning-rate schedule before training with it.
    #[command(after_long_help = stride::optim::schedule::SCHEDULE_GRAMMAR_HELP)]
    Schedule(ScheduleArgs),
    /// Judge a loss log from any framework (CSV/TSV, JSON lines, trainer_state.json, text; `-` is stdin).
    Diagnose(DiagnoseArgs),
    /// LR range test: ramp the rate over ~100 steps, suggest one, restore the weights.
    LrFind(Box<stride::tune::LrFindArgs>),
    /// Train the same model from the same weights at several rates and compare speed and stability.
    Sweep(Box<stride::tune::SweepArgs>),
    /// Evaluate a checkpoint on the test set: loss, accuracy, per-class accuracy, confusion matrix.
    Eval(stride::eval::EvalArgs),
    /// Estimate the loss Hessian's top eigenvalue and the largest stable learning rate 2/lambda.
    Sharpness(Box<stride::sharpness::SharpnessArgs>),
    /// Check that a parametrization keeps activations the same size across widths (muP vs standard).
    CoordCheck(Box<stride::coord_check::CoordCheckArgs>),
}

/// Options of `stride diagnose`.
#[derive(clap::Args)]
struct DiagnoseArgs {
    /// The loss log (`-` reads stdin): CSV/TSV, JSON lines, trainer_state.json, or text lines.
    log: PathBuf,
    /// The loss column or key, when it is not one of the usual names (loss, train_loss, ...).
    #[arg(long)]
    column: Option<String>,
    /// Learning rate of the run, where the log has no `lr` column (without it, advice is in factors).
    #[arg(long)]
    lr: Option<f64>,
    /// Number of classes (the chance-level loss ln C marks dead networks and stalled runs).
    #[arg(long)]
    classes: Option<u32>,
    /// Which losses to judge: auto (steps if the log has any), step, or epoch.
    #[arg(long, value_enum, default_value = "auto")]
    stream: StreamArg,
    /// Print the final diagnosis, evidence included, as JSON instead.
    #[arg(long)]
    json: bool,
}

/// Options of `stride schedule`.
#[derive(clap::Args)]
struct ScheduleArgs {
    /// The schedule, e.g. "warmup(500) then cosine(10000)" (grammar: --help).
    spec: String,
    /// Base learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// Steps (or epochs, for a `per epoch` schedule) to show.
    #[arg(long, default_value_t = 1000)]
    steps: u64,
    /// Also write `step,lr` rows to this CSV file.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Plot the rate on a log scale.
    #[arg(long)]
    log_y: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    stride::logging::init_with(cli.quiet);
    match cli.command {
        Command::Train(args) => {
            let summary = stride::cli::train(&args)?;
            print!("{}", summary.report());
            if let Some(note) = summary.interruption_note() {
                eprintln!("{note}");
            }
            let code = summary.exit_code();
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::Sharpness(args) => print!("{}", stride::sharpness::run(&args)?),
        Command::Eval(args) => print!("{}", stride::eval::run(&args)?.text()),
        Command::CoordCheck(args) => {
            let check = stride::coord_check::run(&args)?;
            if let Some(path) = &args.svg {
                std::fs::write(path, check.figure().to_svg())
                    .map_err(|e| anyhow::anyhow!("cannot write --svg {}: {e}", path.display()))?;
            }
            if let Some(path) = &args.csv {
                std::fs::write(path, check.to_csv())
                    .map_err(|e| anyhow::anyhow!("cannot write --csv {}: {e}", path.display()))?;
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&check)?);
            } else {
                print!("{}", check.table());
            }
            if !(check.passes("mup")) {
                std::process::exit(1);
            }
        }
        Command::Schedule(args) => {
            let scheduler = parse_schedule(&args.spec, args.lr)?;
            let points = preview(&scheduler, args.steps);
            let unit = match scheduler.unit {
                ScheduleUnit::Step => "steps",
                ScheduleUnit::Epoch => "epochs",
            };
            println!("{} with lr {} over {} {unit}", args.spec, args.lr, args.steps);
            print!("{}", render_ascii_plot(&points, 72, 16, args.log_y));
            if let Some(path) = &args.csv {
                // Every step, streamed: the plot is thinned, the file is not.
                let file = std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
                let mut out = std::io::BufWriter::new(file);
                writeln!(out, "step,lr")
                    .and_then(|()| {
                        (0..args.steps).try_for_each(|t| writeln!(out, "{t},{}", scheduler.lr(t)))?;
                        out.flush()
                    })
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {} rows (every step) to {}", args.steps, path.display());
            }
        }
        Command::LrFind(args) => print!("{}", stride::tune::lr_find_job(&args)?),
        Command::Sweep(args) => print!("{}", stride::tune::sweep_job(&args)?.report()),
        Command::Diagnose(args) => {
            if let Some(lr) = args.lr {
                stride::positive("--lr", lr)?;
            }
            if let Some(c) = args.classes.filter(|&c| c < 2) {
                anyhow::bail!("--classes {c}: expected at least 2 classes");
            }
            let opts = LogOptions {
                lr: args.lr,
                num_classes: args.classes,
                stream: args.stream.into(),
            };
            let d = diagnose_path(&args.log, args.column.as_deref(), &opts)?;
            let out = std::io::stdout().lock();
            match write_report(out, &d, args.json, args.stream == StreamArg::Auto) {
                // `stride diagnose big.csv | head`: the reader has seen enough.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                r => r.context("writing the report")?,
            }
        }
    }
    Ok(())
}
