use std::path::PathBuf;

/// Everything that can go wrong while finding, reading or batching a dataset.
///
/// Every variant that comes from a file carries its path, so a message always
/// says which file is bad and how.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// An expected file is not there.
    #[error("missing file {path}: {what}")]
    MissingFile {
        /// The path that was looked up.
        path: PathBuf,
        /// What the file should have held.
        what: String,
    },
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The IDX magic number is not the one expected for this kind of file.
    #[error("bad magic number in {path}: expected {expected:#010x} ({kind}), found {found:#010x}")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number an IDX file of this kind starts with.
        expected: u32,
        /// The number the file starts with.
        found: u32,
        /// "images" or "labels".
        kind: &'static str,
    },
    /// The file ends before the data its header announces.
    #[error("truncated file {path}: header announces {expected} bytes of data, found {found}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header promises (header included).
        expected: usize,
        /// Bytes actually present.
        found: usize,
    },
    /// The image and label files disagree on the number of examples.
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// Number of images.
        n_images: usize,
        /// Number of labels.
        n_labels: usize,
    },
    /// A label is not a valid class index.
    #[error("label {label} at index {index} in {path} is outside the class range 0..{classes}")]
    LabelOutOfRange {
        /// The file (or source) holding the label.
        path: PathBuf,
        /// Position of the example.
        index: usize,
        /// The offending label.
        label: i64,
        /// Number of classes.
        classes: usize,
    },
    /// Images are not the size this dataset has.
    #[error("unexpected image size in {path}: expected {expected_rows}x{expected_cols}, found {rows}x{cols}")]
    ImageSize {
        /// The file.
        path: PathBuf,
        /// Rows found.
        rows: usize,
        /// Columns found.
        cols: usize,
        /// Rows expected.
        expected_rows: usize,
        /// Columns expected.
        expected_cols: usize,
    },
    /// A parquet file could not be decoded or has an unexpected layout.
    #[error("bad parquet file {path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An embedded PNG image could not be decoded.
    #[error("bad PNG image in row {row} of {path}: {message}")]
    Png {
        /// The parquet file holding the image.
        path: PathBuf,
        /// The row of the image.
        row: usize,
        /// What is wrong.
        message: String,
    },
    /// The Hugging Face hub could not deliver the dataset.
    #[error("hub dataset {repo}: {message}")]
    Hub {
        /// The dataset repository, e.g. `ylecun/mnist`.
        repo: String,
        /// Why it failed.
        message: String,
    },
    /// No source had the dataset; the message lists what was tried and why each failed.
    #[error("dataset {name} not found; tried:\n{tried}")]
    NotFound {
        /// Dataset name.
        name: String,
        /// One line per source tried.
        tried: String,
    },
    /// An invalid argument (dataset name, batch size, ...).
    #[error("invalid {what}: {message}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// What was expected.
        message: String,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DataError>;
