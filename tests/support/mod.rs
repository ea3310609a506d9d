//! Test support: a local stand-in for the Hugging Face hub and a writer for MNIST-shaped parquet files.
pub mod hub_server;
pub mod parquet_fixture;
