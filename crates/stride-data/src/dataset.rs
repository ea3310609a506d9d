//! In-memory image-classification datasets and the MNIST-like names.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use candle_core::{Device, Tensor};

use crate::error::{DataError, Result};
use crate::idx;

/// The datasets Stride knows how to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetName {
    /// Handwritten digits, 60,000 train / 10,000 test (or the embedded 8,000 / 2,000 sample).
    Mnist,
    /// Zalando's clothing images, 60,000 train / 10,000 test.
    FashionMnist,
}

impl DatasetName {
    /// Directory name under `datasets/` and in `STRIDE_DATA_DIR`-style layouts.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Mnist => "mnist",
            Self::FashionMnist => "fashion-mnist",
        }
    }

    /// The Hugging Face dataset repository.
    pub fn hub_repo(self) -> &'static str {
        match self {
            Self::Mnist => "ylecun/mnist",
            Self::FashionMnist => "zalando-datasets/fashion_mnist",
        }
    }

    /// The (train, test) parquet files inside the hub repository.
    pub fn hub_files(self) -> (&'static str, &'static str) {
        match self {
            Self::Mnist => (
                "mnist/train-00000-of-00001.parquet",
                "mnist/test-00000-of-00001.parquet",
            ),
            Self::FashionMnist => (
                "fashion_mnist/train-00000-of-00001.parquet",
                "fashion_mnist/test-00000-of-00001.parquet",
            ),
        }
    }

    /// Human-readable class names, indexed by label.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            Self::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            Self::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

impl FromStr for DatasetName {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mnist" => Ok(Self::Mnist),
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" | "fashion" => Ok(Self::FashionMnist),
            _ => Err(DataError::Invalid {
                what: "dataset name",
                message: format!("{s:?}: expected \"mnist\" or \"fashion-mnist\""),
            }),
        }
    }
}

/// Images of one split held in memory as bytes, with their labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
    classes: usize,
}

/// Side length of MNIST-like images.
pub const MNIST_SIDE: usize = 28;
/// Number of classes of MNIST-like datasets.
pub const MNIST_CLASSES: usize = 10;

impl Dataset {
    /// Builds a dataset, checking that sizes and labels agree.
    ///
    /// `origin` names where the data came from, for error messages.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
        classes: usize,
        origin: &Path,
    ) -> Result<Self> {
        let per_image = rows * cols;
        if per_image == 0 || images.len() % per_image != 0 {
            return Err(DataError::Invalid {
                what: "image buffer",
                message: format!(
                    "{}: {} bytes is not a whole number of {rows}x{cols} images",
                    origin.display(),
                    images.len()
                ),
            });
        }
        let n_images = images.len() / per_image;
        if n_images != labels.len() {
            return Err(DataError::CountMismatch {
                images: origin.to_path_buf(),
                labels: origin.to_path_buf(),
                n_images,
                n_labels: labels.len(),
            });
        }
        check_labels(&labels, classes, origin)?;
        Ok(Self {
            images,
            labels,
            rows,
            cols,
            classes,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Rows per image.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns per image.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Pixels of all images, row-major, one byte each.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// Labels, one per image.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Examples per class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Images as an `(n, rows*cols)` f32 tensor scaled to `[0, 1]`, labels as `(n,)` u32.
    pub fn to_tensors(&self, device: &Device) -> Result<(Tensor, Tensor)> {
        let n = self.len();
        // Huge pages: a training step gathers 128 random rows, and with 4 KiB pages each
        // row is a TLB miss (measured: 147 -> 87 us per gather of W's batch).
        let pixels = stride_cpu::huge_page_vec(self.images.len(), self.images.iter().map(|&p| f32::from(p) / 255.0));
        let x = Tensor::from_vec(pixels, (n, self.rows * self.cols), device)?;
        let labels: Vec<u32> = self.labels.iter().map(|&l| u32::from(l)).collect();
        let y = Tensor::from_vec(labels, n, device)?;
        Ok((x, y))
    }
}

impl Dataset {
    /// The examples at `indices` (in that order) as tensors like [`Dataset::to_tensors`],
    /// converting only those images; an index past the end is an error naming it.
    pub fn gather_tensors(&self, indices: &[u32], device: &Device) -> Result<(Tensor, Tensor)> {
        let per_image = self.rows * self.cols;
        let mut pixels = Vec::with_capacity(indices.len() * per_image);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let i = i as usize;
            if i >= self.len() {
                return Err(DataError::Invalid {
                    what: "example index",
                    message: format!("{i}: the dataset has {} examples", self.len()),
                });
            }
            pixels.extend(
                self.images[i * per_image..(i + 1) * per_image]
                    .iter()
                    .map(|&p| f32::from(p) / 255.0),
            );
            labels.push(u32::from(self.labels[i]));
        }
        let x = Tensor::from_vec(pixels, (indices.len(), per_image), device)?;
        let y = Tensor::from_vec(labels, indices.len(), device)?;
        Ok((x, y))
    }
}

impl Dataset {
    /// Splits off a validation set of `fraction` of the examples, stratified by class (each
    /// class gives the same share, rounded) and chosen by `seed`; returns (train, validation),
    /// both keeping the original order. A fraction of 0 gives an empty validation set.
    pub fn split_validation(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..1.0).contains(&fraction) {
            return Err(DataError::Invalid {
                what: "validation fraction",
                message: format!("{fraction}: expected 0 <= fraction < 1"),
            });
        }
        let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); self.classes];
        for (i, &l) in self.labels.iter().enumerate() {
            by_class[usize::from(l)].push(i as u32);
        }
        let mut held = vec![false; self.len()];
        for (class, members) in by_class.iter().enumerate() {
            let take = (members.len() as f64 * fraction).round() as usize;
            // The batcher's seeded shuffle, on a stream of its own per class.
            let order = crate::Batcher::new(members.len(), 1, seed ^ 0x7661_6c69_6461_7465)?.order(class as u64);
            for &k in &order[..take] {
                held[members[k as usize] as usize] = true;
            }
        }
        let per_image = self.rows * self.cols;
        let pick = |keep: bool| {
            let rows: Vec<usize> = (0..self.len()).filter(|&i| held[i] != keep).collect();
            let images = rows
                .iter()
                .flat_map(|&i| &self.images[i * per_image..(i + 1) * per_image])
                .copied()
                .collect();
            let labels = rows.iter().map(|&i| self.labels[i]).collect();
            Dataset {
                images,
                labels,
                rows: self.rows,
                cols: self.cols,
                classes: self.classes,
            }
        };
        Ok((pick(true), pick(false)))
    }
}

fn check_labels(labels: &[u8], classes: usize, path: &Path) -> Result<()> {
    match labels.iter().position(|&l| usize::from(l) >= classes) {
        Some(index) => Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label: i64::from(labels[index]),
            classes,
        }),
        None => Ok(()),
    }
}

/// A train split and a test split.
///
/// The test split is for the final report only; decisions during training (the best
/// checkpoint, plateau rules, early stopping) belong on a validation set carved from the
/// training split with [`Dataset::split_validation`].
#[derive(Debug, Clone)]
pub struct Splits {
    /// Training examples.
    pub train: Dataset,
    /// Held-out examples.
    pub test: Dataset,
}

/// File stems of the four IDX files of an MNIST-like directory.
const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Finds `stem` or `stem.gz` in `dir`.
fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// True when `dir` holds at least the training images of an MNIST-like dataset.
pub fn has_idx_files(dir: &Path) -> bool {
    find_file(dir, IDX_FILES[0]).is_some()
}

/// Loads one split from an image file and a label file, checking them against each other.
pub fn load_idx_pair(images_path: &Path, labels_path: &Path) -> Result<Dataset> {
    let images = idx::read_images(images_path)?;
    check_image_size(&images, images_path)?;
    let labels = idx::read_labels(labels_path)?;
    checked_pair(images, images_path, labels, labels_path)
}

/// Parses one split from the bytes of an image file and a label file (each gzip or raw),
/// checking them as [`load_idx_pair`] does; the paths only name the data in errors.
pub(crate) fn idx_pair_from_bytes(
    images_origin: &Path,
    images_raw: &[u8],
    labels_origin: &Path,
    labels_raw: &[u8],
) -> Result<Dataset> {
    let images = idx::parse_images(images_origin, &idx::gunzip_if_gz(images_origin, images_raw.to_vec())?)?;
    check_image_size(&images, images_origin)?;
    let labels = idx::parse_labels(labels_origin, &idx::gunzip_if_gz(labels_origin, labels_raw.to_vec())?)?;
    checked_pair(images, images_origin, labels, labels_origin)
}

fn check_image_size(images: &idx::IdxImages, path: &Path) -> Result<()> {
    if images.rows != MNIST_SIDE || images.cols != MNIST_SIDE {
        return Err(DataError::ImageSize {
            path: path.to_path_buf(),
            rows: images.rows,
            cols: images.cols,
            expected_rows: MNIST_SIDE,
            expected_cols: MNIST_SIDE,
        });
    }
    Ok(())
}

fn checked_pair(images: idx::IdxImages, images_path: &Path, labels: Vec<u8>, labels_path: &Path) -> Result<Dataset> {
    if images.count != labels.len() {
        return Err(DataError::CountMismatch {
            images: images_path.to_path_buf(),
            labels: labels_path.to_path_buf(),
            n_images: images.count,
            n_labels: labels.len(),
        });
    }
    check_labels(&labels, MNIST_CLASSES, labels_path)?;
    Ok(Dataset {
        images: images.pixels,
        labels,
        rows: images.rows,
        cols: images.cols,
        classes: MNIST_CLASSES,
    })
}

/// Loads the train and test splits from a directory of the four standard IDX files
/// (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, `t10k-...`).
pub fn load_idx_dir(dir: &Path) -> Result<Splits> {
    let paths: Vec<PathBuf> = IDX_FILES
        .iter()
        .map(|stem| {
            find_file(dir, stem).ok_or_else(|| DataError::MissingFile {
                path: dir.join(stem),
                what: format!("expected {stem} or {stem}.gz in {}", dir.display()),
            })
        })
        .collect::<Result<_>>()?;
    Ok(Splits {
        train: load_idx_pair(&paths[0], &paths[1])?,
        test: load_idx_pair(&paths[2], &paths[3])?,
    })
}

#[cfg(test)]
mod split_tests {
    use super::*;

    fn data() -> Dataset {
        // 100 one-pixel images: pixel = index, label = index % 4 (25 per class).
        let images: Vec<u8> = (0..100).collect();
        let labels: Vec<u8> = (0..100).map(|i| i % 4).collect();
        Dataset::new(images, labels, 1, 1, 4, Path::new("t")).unwrap()
    }

    #[test]
    fn validation_is_stratified_disjoint_and_seeded() {
        let d = data();
        let (train, val) = d.split_validation(0.2, 7).unwrap();
        assert_eq!((train.len(), val.len()), (80, 20));
        assert_eq!(val.class_counts(), vec![5; 4]);
        let mut all: Vec<u8> = train.images().iter().chain(val.images()).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<u8>>(), "every example exactly once");
        assert_eq!(d.split_validation(0.2, 7).unwrap().1, val, "same seed, same split");
        assert_ne!(
            d.split_validation(0.2, 8).unwrap().1,
            val,
            "another seed, another split"
        );
        assert_eq!(d.split_validation(0.0, 7).unwrap().0, d);
        assert!(d.split_validation(1.0, 7).is_err());
        assert!(d.split_validation(f64::NAN, 7).is_err());
    }
}
