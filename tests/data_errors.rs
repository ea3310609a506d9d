//! Every kind of bad input is an error that names the file and the problem.

use std::path::Path;

use stride_data::idx::{write_images, write_labels, IdxImages};
use stride_data::{load_idx_dir, load_idx_pair, read_image_parquet, DataError, DatasetName, Resolver};

use crate::support::parquet_fixture::{png_gray, write_mnist_like_parquet, write_raw_image_parquet};

fn images(count: usize, side: usize) -> IdxImages {
    IdxImages {
        count,
        rows: side,
        cols: side,
        pixels: (0..count * side * side).map(|i| (i % 251) as u8).collect(),
    }
}

/// Writes a valid 4-file dataset with `n` train and `n` test examples.
fn write_dir(dir: &Path, n: usize) {
    for prefix in ["train", "t10k"] {
        write_images(
            &dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
            &images(n, 28),
            true,
        )
        .unwrap();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        write_labels(&dir.join(format!("{prefix}-labels-idx1-ubyte")), &labels, false).unwrap();
    }
}

fn assert_names(err: &DataError, path: &Path, problem: &str) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "{msg:?} should name {}",
        path.display()
    );
    assert!(msg.contains(problem), "{msg:?} should say {problem:?}");
}

#[test]
fn valid_gzip_and_raw_files_load() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), 12);
    let splits = load_idx_dir(dir.path()).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (12, 12));
    assert_eq!(splits.train.images(), images(12, 28).pixels.as_slice());
    assert_eq!(splits.test.labels()[11], 1);
}

#[test]
fn gzip_is_detected_by_magic_not_name() {
    let dir = tempfile::tempdir().unwrap();
    // Raw bytes under a .gz name and gzip bytes under a plain name both load.
    let img = dir.path().join("a.gz");
    let lab = dir.path().join("b");
    write_images(&img, &images(3, 28), false).unwrap();
    write_labels(&lab, &[1, 2, 3], true).unwrap();
    assert_eq!(load_idx_pair(&img, &lab).unwrap().labels(), &[1, 2, 3]);
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_idx_dir(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
    assert_names(&err, &dir.path().join("train-images-idx3-ubyte"), "missing file");
    let resolver = Resolver {
        data_dir: Some(dir.path().to_path_buf()),
        ..Resolver::from_env()
    };
    let err = resolver.load(DatasetName::Mnist).unwrap_err();
    assert_names(&err, dir.path(), "no mnist IDX files");
}

#[test]
fn bad_magic() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels");
    write_labels(&labels, &[1, 2], false).unwrap();
    // A label file where images are expected.
    let err = load_idx_pair(&labels, &labels).unwrap_err();
    assert!(matches!(err, DataError::BadMagic { found: 0x801, .. }), "{err:?}");
    assert_names(&err, &labels, "bad magic number");
    assert!(err.to_string().contains("0x00000803"));
}

#[test]
fn truncated_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("imgs");
    let mut imgs = images(5, 28);
    write_images(&path, &imgs, false).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = stride_data::idx::read_images(&path).unwrap_err();
    assert!(
        matches!(err, DataError::Truncated { expected, found, .. } if expected == 16 + 5 * 784 && found == expected - 100),
        "{err:?}"
    );
    assert_names(&err, &path, "truncated");
    // A header cut short is truncated too, not a panic.
    std::fs::write(&path, [0u8, 0, 8]).unwrap();
    assert!(matches!(
        stride_data::idx::read_images(&path),
        Err(DataError::Truncated { .. })
    ));
    // So is a gzip stream cut short: an I/O error naming the file.
    imgs.count = 5;
    write_images(&path, &imgs, true).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_names(&stride_data::idx::read_images(&path).unwrap_err(), &path, "cannot read");
}

#[test]
fn count_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = (dir.path().join("i"), dir.path().join("l"));
    write_images(&img, &images(4, 28), false).unwrap();
    write_labels(&lab, &[0, 1, 2], false).unwrap();
    let err = load_idx_pair(&img, &lab).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                n_images: 4,
                n_labels: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &img, "holds 4 images");
    assert_names(&err, &lab, "3 labels");
}

#[test]
fn label_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = (dir.path().join("i"), dir.path().join("l"));
    write_images(&img, &images(3, 28), false).unwrap();
    write_labels(&lab, &[0, 12, 2], false).unwrap();
    let err = load_idx_pair(&img, &lab).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 1,
                label: 12,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &lab, "outside the class range 0..10");
}

#[test]
fn unexpected_image_size() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = (dir.path().join("i"), dir.path().join("l"));
    write_images(&img, &images(2, 32), false).unwrap();
    write_labels(&lab, &[0, 1], false).unwrap();
    let err = load_idx_pair(&img, &lab).unwrap_err();
    assert!(
        matches!(err, DataError::ImageSize { rows: 32, cols: 32, .. }),
        "{err:?}"
    );
    assert_names(&err, &img, "expected 28x28, found 32x32");
}

#[test]
fn corrupt_parquet_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.parquet");
    std::fs::write(&garbage, b"PAR1 this is not parquet").unwrap();
    let err = read_image_parquet(&garbage).unwrap_err();
    assert!(matches!(err, DataError::Parquet { .. }), "{err:?}");
    assert_names(&err, &garbage, "bad parquet file");

    let bad_png = dir.path().join("bad_png.parquet");
    let good = png_gray(&[7; 784], 28, 28).unwrap();
    write_raw_image_parquet(&bad_png, &[(good, 3), (b"\x89PNG not really".to_vec(), 4)]).unwrap();
    let err = read_image_parquet(&bad_png).unwrap_err();
    assert!(matches!(err, DataError::Png { row: 1, .. }), "{err:?}");
    assert_names(&err, &bad_png, "row 1");

    let bad_label = dir.path().join("bad_label.parquet");
    write_mnist_like_parquet(&bad_label, &[(vec![0; 784], 10)]).unwrap();
    assert!(matches!(
        read_image_parquet(&bad_label),
        Err(DataError::LabelOutOfRange { label: 10, .. })
    ));

    let wrong_size = dir.path().join("wrong_size.parquet");
    write_raw_image_parquet(&wrong_size, &[(png_gray(&[0; 16], 4, 4).unwrap(), 1)]).unwrap();
    assert_names(&read_image_parquet(&wrong_size).unwrap_err(), &wrong_size, "4x4");
}

#[test]
fn unknown_dataset_name() {
    let err = "cifar".parse::<DatasetName>().unwrap_err();
    assert!(err.to_string().contains("\"cifar\""), "{err}");
}
