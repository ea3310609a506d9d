use std::path::PathBuf;

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// An invalid trainer setting.
    #[error("invalid trainer setting {name} = {value}: {message}")]
    Config {
        /// The setting.
        name: &'static str,
        /// Its value, as text.
        value: String,
        /// What is expected.
        message: &'static str,
    },
    /// The training set has no examples.
    #[error("the training set is empty")]
    EmptyTrainingSet,
    /// The optimizer was built over no variables.
    #[error("the optimizer has no variables to train")]
    NoVariables,
    /// The model's variables are not on the device the trainer was told to train on.
    #[error(
        "the trainer was set to train on {expected}, but the model's variables are on {found}; create the model \
         with a VarBuilder on {expected}"
    )]
    WrongDevice {
        /// The device given to the trainer (`cpu`, `cuda:0`, `metal:0`).
        expected: String,
        /// Where the variables are.
        found: String,
    },
    /// Inputs holding NaN or infinite values, found before any step.
    #[error(
        "the {what} hold {count} NaN or infinite values (first in example {example}, value {value}); clean or \
         drop those examples before training"
    )]
    NonFiniteInputs {
        /// Which inputs (`training inputs`, `test inputs`).
        what: String,
        /// How many values are not finite.
        count: usize,
        /// The first example holding one.
        example: usize,
        /// That value.
        value: f64,
    },
    /// An optimizer variable the model's `VarMap` does not hold, so a checkpoint cannot name it.
    #[error(
        "optimizer variable {index} (shape {shape:?}) is not in the model's VarMap, so a checkpoint cannot name it"
    )]
    UnknownVariable {
        /// Its index among the optimizer's variables.
        index: usize,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// The sharpness estimate could not be formed.
    #[error("sharpness: {0}")]
    Sharpness(String),
    /// An observer's checkpointed state could not be restored.
    #[error("the {observer}'s checkpointed state is invalid: {message}")]
    ObserverState {
        /// The observer, e.g. `run monitor`.
        observer: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An observer asked for something the loop cannot do.
    #[error("an observer asked for {asked}, but {why}")]
    Observer {
        /// The request.
        asked: &'static str,
        /// Why it cannot be done.
        why: String,
    },
    /// The model could not be built or used.
    #[error(transparent)]
    Model(#[from] stride_model::ModelError),
    /// A metrics, report or other output file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint that cannot be written, read or used with this run.
    #[error("checkpoint {path}: {problem}")]
    Checkpoint {
        /// The checkpoint directory (or the file inside it that is bad).
        path: PathBuf,
        /// What is wrong.
        problem: CheckpointProblem,
    },
    /// Dataset error.
    #[error(transparent)]
    Dataset(#[from] stride_data::DataError),
    /// Optimizer error.
    #[error(transparent)]
    Optim(#[from] stride_optim::OptimError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, TrainError>;

/// What is wrong with a checkpoint; every variant names the value that did not fit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointProblem {
    /// A file or pointer the checkpoint needs is not there.
    #[error("missing {what}")]
    Missing {
        /// What is missing, e.g. `state.json`.
        what: String,
    },
    /// A file is shorter (or longer) than its manifest says: an interrupted copy.
    #[error("{file} has {found} bytes, the manifest says {expected} (truncated or corrupt)")]
    Truncated {
        /// The file inside the checkpoint.
        file: &'static str,
        /// Size recorded when it was written.
        expected: u64,
        /// Size found.
        found: u64,
    },
    /// A file's bytes are not the ones written: corrupted on disk or in a copy.
    #[error("{file} has CRC-32 {found:08x}, the manifest says {expected:08x} (corrupt)")]
    Checksum {
        /// The file inside the checkpoint.
        file: &'static str,
        /// Checksum recorded when it was written.
        expected: u32,
        /// Checksum of the bytes found.
        found: u32,
    },
    /// Another live process holds the directory's lock.
    #[error("it is in use by process {pid} (lock file {lock}); wait for that run or use another directory")]
    Locked {
        /// The holder's process id.
        pid: u32,
        /// The lock file.
        lock: String,
    },
    /// A fresh run would mix its checkpoints with another run's.
    #[error(
        "it holds checkpoints of another run (latest: {latest}); resume it (`--resume latest`), pass \
         `--overwrite` to replace it, or choose another directory"
    )]
    OtherRun {
        /// The name `latest` points at.
        latest: String,
    },
    /// A file does not parse.
    #[error("{file} does not parse: {message}")]
    Corrupt {
        /// The file inside the checkpoint.
        file: &'static str,
        /// The parser's message.
        message: String,
    },
    /// The checkpoint was written by an unknown format version.
    #[error("format version {found}, this Stride reads version {expected}")]
    Version {
        /// Version this build writes and reads.
        expected: u32,
        /// Version in the file.
        found: u32,
    },
    /// The model described in the checkpoint is not the model being trained.
    #[error("it holds model {found:?}, this run trains {expected:?}")]
    ModelMismatch {
        /// The model of this run.
        expected: String,
        /// The model in the checkpoint.
        found: String,
    },
    /// A variable of the model has no tensor in the checkpoint.
    #[error("no tensor for variable {name}")]
    MissingTensor {
        /// Variable name, e.g. `fc0.weight`.
        name: String,
    },
    /// The checkpoint holds a tensor the model has no variable for.
    #[error("tensor {name} is not a variable of this model")]
    UnexpectedTensor {
        /// The tensor's name.
        name: String,
    },
    /// A tensor has another shape than the variable (or the manifest).
    #[error("tensor {name} has shape {found:?}, expected {expected:?}")]
    Shape {
        /// The tensor's name.
        name: String,
        /// Shape of the variable or manifest entry.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor holds NaN or infinite values.
    #[error("tensor {name} holds NaN or infinite values")]
    NonFinite {
        /// The tensor's name.
        name: String,
    },
    /// A setting of this run differs from the checkpointed run, so resuming would not be exact.
    #[error("{name} is {current} in this run but {saved} in the checkpoint")]
    RunMismatch {
        /// The setting.
        name: &'static str,
        /// Value in the checkpoint.
        saved: String,
        /// Value in this run.
        current: String,
    },
    /// Writing failed.
    #[error("cannot write {file}: {source}")]
    Io {
        /// The file or directory being written.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
}
