//! Stride's integration tests, in one binary so candle is linked once.

mod callbacks;
mod checkpoint;
mod data_errors;
mod device_reads;
mod faults;
mod first_contact;
mod fuzz_props;
mod hub;
mod lr_finder_confidence;
mod lr_tools;
mod monitor;
mod mup;
mod outside_optimizer;
mod sharpness;
mod support;
mod training;
mod validation;
