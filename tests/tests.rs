//! Stride's integration tests, in one binary so candle is linked once.

mod callbacks;
mod data_errors;
mod hub;
mod lr_tools;
mod monitor;
mod sharpness;
mod support;
mod training;
