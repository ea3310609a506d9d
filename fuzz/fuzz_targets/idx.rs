//! The IDX reader on arbitrary bytes: gzip detection, then the image and label parsers.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stride::data::idx::{gunzip_if_gz, parse_images, parse_labels};

fuzz_target!(|data: &[u8]| {
    let origin = Path::new("fuzz-input");
    if let Ok(bytes) = gunzip_if_gz(origin, data.to_vec()) {
        if let Ok(images) = parse_images(origin, &bytes) {
            assert_eq!(images.pixels.len(), images.count * images.rows * images.cols);
        }
        if let Ok(labels) = parse_labels(origin, &bytes) {
            assert!(labels.len() + 8 <= bytes.len());
        }
    }
});
