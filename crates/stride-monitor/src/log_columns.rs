//! The column and key names frameworks write, in order of preference.

/// Training-loss names, best first. Per-step names come before per-epoch ones (a denser stream).
pub(crate) const LOSS_NAMES: &[&str] = &[
    "loss",
    "train_loss",
    "training_loss",
    "train_loss_step",
    "loss_step",
    "train_loss_iter",
    "trainloss",
    "tr_loss",
    "train_loss_epoch",
    "loss_epoch",
    "train_loss_mean",
    "avg_loss",
    "mean_loss",
    "total_loss",
    "lm_loss",
    "nll",
    "mse",
    // A regression's loss under its metric's name (`train_mse`), and llm.c's `main.log`
    // (`s:100 trl:3.28`).
    "train_mse",
    "train_nll",
    "trl",
    // TensorBoard's scalar export: `Wall time,Step,Value`.
    "value",
];

/// Validation-loss names, best first.
pub(crate) const VAL_NAMES: &[&str] = &[
    "val_loss",
    "valid_loss",
    "validation_loss",
    "eval_loss",
    "test_loss",
    "val_loss_epoch",
    "dev_loss",
    "validation_loss_epoch",
    // Run together (`TrainLoss=1.87 ... ValLoss=1.30`).
    "valloss",
    "validloss",
    "testloss",
    "val_mse",
    "val_nll",
    // llm.c's `main.log` (`s:100 tel:3.31`).
    "tel",
];

/// Step names, best first (`epoch` is separate: it is the x only when nothing finer exists).
pub(crate) const X_NAMES: &[&str] = &[
    "step",
    "global_step",
    "iter",
    "iteration",
    "it",
    "steps",
    "trainer_global_step",
    "_step",
    "num_steps",
];

/// Learning-rate names, best first.
pub(crate) const LR_NAMES: &[&str] = &[
    "lr",
    "learning_rate",
    "lr_0",
    "lr_abs",
    "lr_adam",
    "lr_sgd",
    // Ultralytics YOLO's results.csv.
    "lr_pg0",
    "x_lr0",
];

/// A name as compared: lower case, quotes and spaces trimmed, `/`, `-`, `.` and spaces as `_`
/// (`"Train Loss"`, `train/loss` and `train-loss` are all `train_loss`).
pub(crate) fn norm(name: &str) -> String {
    name.trim()
        .trim_matches(['"', '\''])
        .trim()
        .chars()
        .map(|c| match c {
            '/' | '-' | '.' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// The first of `wanted` present in `names` (normalised), as an index into `names`.
pub(crate) fn find_column(names: &[String], wanted: &[&str]) -> Option<usize> {
    wanted.iter().find_map(|w| names.iter().position(|n| n == w))
}

/// Whether a header line names a loss column the reader knows (a commented line that does is
/// a header, not a remark).
pub(crate) fn has_known_column(line: &str) -> bool {
    line.split(|c: char| c == ',' || c == '\t' || c == ';' || c.is_whitespace())
        .map(norm)
        .any(|n| LOSS_NAMES.contains(&n.as_str()) || VAL_NAMES.contains(&n.as_str()) || n.ends_with("loss"))
}

/// A training-loss column by its ending when no usual name fits (W&B exports name columns
/// `<run> - train/loss`; `__MIN`/`__MAX` companions are skipped).
pub(crate) fn loss_like(names: &[String]) -> Option<usize> {
    names.iter().position(|n| {
        let p = last_part(n);
        p.ends_with("loss") && !p.contains("__") && !is_val_name(p)
    })
}

/// Every training-loss component column (YOLO's `train/box_loss`, `train/cls_loss`, ...), for
/// logs without a total.
pub(crate) fn loss_components(names: &[String]) -> Vec<usize> {
    (0..names.len())
        .filter(|i| {
            let p = last_part(&names[*i]);
            p.ends_with("loss") && !p.contains("__") && !is_val_name(p)
        })
        .collect()
}

/// Every validation-loss component column (YOLO's `val/box_loss`, ...).
pub(crate) fn val_components(names: &[String]) -> Vec<usize> {
    (0..names.len())
        .filter(|i| {
            let p = last_part(&names[*i]);
            p.ends_with("loss") && !p.contains("__") && is_val_name(p)
        })
        .collect()
}

/// Validation-loss column by its ending (`<run> - val/loss`).
pub(crate) fn val_like(names: &[String]) -> Option<usize> {
    names.iter().position(|n| {
        let p = last_part(n);
        p.ends_with("loss") && !p.contains("__") && is_val_name(p)
    })
}

/// The part of a W&B column name after `<run> - ` (normalised: `run___val_loss` -> `val_loss`).
fn last_part(n: &str) -> &str {
    n.rsplit("___").next().unwrap_or(n)
}

/// Whether a normalised name is a validation loss (for keys not in [`VAL_NAMES`]).
pub(crate) fn is_val_name(name: &str) -> bool {
    VAL_NAMES.contains(&name)
        || (name.contains("loss")
            && ["val", "valid", "eval", "test", "dev"]
                .iter()
                .any(|p| name.starts_with(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_across_frameworks() {
        assert_eq!(norm("\"Train Loss\""), "train_loss");
        assert_eq!(norm("train/loss"), "train_loss");
        assert_eq!(norm(" Loss "), "loss");
        let names: Vec<String> = ["epoch", "val_loss", "train_loss"].iter().map(|s| norm(s)).collect();
        assert_eq!(find_column(&names, LOSS_NAMES), Some(2));
        assert_eq!(find_column(&names, VAL_NAMES), Some(1));
        assert!(is_val_name("eval_loss") && is_val_name("validation_nll_loss") && !is_val_name("loss"));
    }
}
