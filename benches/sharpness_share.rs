//! The sharpness estimator's share of training time on the reference workload W
//! (Fashion-MNIST, MLP 784-128-ReLU-10, SGD 0.1, batch 128, 469 steps/epoch), at the
//! default frequency (once per epoch) for a few fixed-batch sizes, and the same run
//! without it. The share is measured inside each run (the trainer times the estimates), so
//! it is robust to a noisy machine; the epoch medians are printed beside it.
//!
//! ```text
//! cargo bench --bench sharpness_share -- [epochs, default 4]
//! ```

use candle_nn::VarMap;
use stride::data::{DatasetName, Resolver};
use stride::model::{Activation, Mlp};
use stride::train::{SharpnessSchedule, Trainer};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let epochs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(4);
    let data = Resolver::from_env().load(DatasetName::FashionMnist)?.splits;
    println!(
        "W: {} epochs of Fashion-MNIST MLP 784-128-10, SGD 0.1, batch 128",
        epochs
    );
    for batch in [None, Some(128), Some(256), Some(1024), Some(0)] {
        let varmap = VarMap::new();
        let model = Mlp::seeded(&"784-128-10".parse()?, Activation::Relu, &varmap, 0)?;
        let mut builder = Trainer::builder().epochs(epochs);
        if let Some(batch) = batch {
            builder = builder.sharpness(SharpnessSchedule {
                batch,
                ..SharpnessSchedule::default()
            });
        }
        let h = builder.build()?.fit(&model, &varmap, &data.train, None)?;
        let train: f64 = h.epochs.iter().map(|e| e.train_seconds).sum();
        let spent: f64 = h.epochs.iter().map(|e| e.sharpness_seconds).sum();
        let epoch_median = median(h.epochs.iter().skip(1).map(|e| e.train_seconds).collect());
        let iters: Vec<String> = h.sharpness.iter().map(|(_, r)| r.iterations.to_string()).collect();
        let lambdas: Vec<String> = h.sharpness.iter().map(|(_, r)| format!("{:.3}", r.lambda)).collect();
        println!(
            "RESULT sharpness_batch={} median_epoch_s={epoch_median:.3} sharpness_s={spent:.3} share={:.2}% iterations=[{}] lambda=[{}]",
            batch.map_or("off".to_string(), |b| if b == 0 { "step".into() } else { b.to_string() }),
            100.0 * spent / train,
            iters.join(","),
            lambdas.join(",")
        );
    }
    Ok(())
}
