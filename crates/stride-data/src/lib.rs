//! Datasets for Stride.
//!
//! - [`idx`]: the IDX files of MNIST-like datasets (gzip or raw);
//! - [`Resolver`]: finds a dataset in the order explicit directory, repository
//!   `datasets/`, system package, Hugging Face hub, the sample embedded in the binary;
//! - [`Dataset`]: images and labels in memory, turned into candle tensors;
//! - [`Batcher`]: seeded per-epoch shuffling into mini-batches.
#![deny(missing_docs)]

mod batcher;
mod dataset;
mod error;
mod examples;
pub mod hub;
pub mod idx;
mod parquet_images;
mod resolve;
mod sample;

pub use batcher::Batcher;
pub use dataset::{
    has_idx_files, load_idx_dir, load_idx_pair, Dataset, DatasetName, Splits, MNIST_CLASSES, MNIST_SIDE,
};
pub use error::{DataError, Result};
pub use examples::{Examples, TensorData};
pub use hub::{load_from_hub, HubConfig};
pub use parquet_images::read_image_parquet;
pub use resolve::{repo_datasets_dir, Loaded, Resolver, Source, REPO_DATASETS_ENV, SYSTEM_DIR};
pub use sample::{load_sample, SAMPLE_TEST_LEN, SAMPLE_TRAIN_LEN};
