//! The embedded MNIST sample: 8,000 training and 2,000 test digits compiled into the binary
//! (about 1.6 MB of gzip IDX), so a copied or `cargo install`ed program still has data when
//! no other source does. The files and their provenance are in `mnist-sample/` of this crate.

use std::path::Path;

use crate::dataset::{idx_pair_from_bytes, Splits};
use crate::error::Result;

const TRAIN_IMAGES: &[u8] = include_bytes!("../mnist-sample/train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] = include_bytes!("../mnist-sample/train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] = include_bytes!("../mnist-sample/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../mnist-sample/t10k-labels-idx1-ubyte.gz");

/// Training examples in the embedded sample.
pub const SAMPLE_TRAIN_LEN: usize = 8_000;
/// Test examples in the embedded sample.
pub const SAMPLE_TEST_LEN: usize = 2_000;

/// Decodes the embedded MNIST sample (gunzipped on every call: keep the result).
pub fn load_sample() -> Result<Splits> {
    // Errors name the file inside the crate it was compiled from; there is no such file at
    // run time, but the name says which of the four embedded files is wrong.
    let name = |file: &str| Path::new("<embedded mnist-sample>").join(file);
    Ok(Splits {
        train: idx_pair_from_bytes(
            &name("train-images-idx3-ubyte.gz"),
            TRAIN_IMAGES,
            &name("train-labels-idx1-ubyte.gz"),
            TRAIN_LABELS,
        )?,
        test: idx_pair_from_bytes(
            &name("t10k-images-idx3-ubyte.gz"),
            TEST_IMAGES,
            &name("t10k-labels-idx1-ubyte.gz"),
            TEST_LABELS,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_sample_decodes_to_its_documented_split() {
        let s = load_sample().unwrap();
        assert_eq!((s.train.len(), s.test.len()), (SAMPLE_TRAIN_LEN, SAMPLE_TEST_LEN));
        // datasets/README's stratified split: the test counts per class.
        assert_eq!(
            s.test.class_counts(),
            vec![200, 225, 198, 206, 196, 173, 203, 214, 189, 196]
        );
    }

    #[test]
    fn the_embedded_bytes_are_the_crate_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mnist-sample");
        let from_files = crate::dataset::load_idx_dir(&dir).unwrap();
        let embedded = load_sample().unwrap();
        assert_eq!(from_files.train, embedded.train);
        assert_eq!(from_files.test, embedded.test);
    }
}
