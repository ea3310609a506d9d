//! Finding a dataset: explicit directory, the repository's `datasets/`, the
//! Debian/Ubuntu package copy, the Hugging Face hub, then (MNIST only) the
//! sample embedded in the binary. The first source that has the data wins and is logged.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::dataset::{has_idx_files, load_idx_dir, DatasetName, Splits};
use crate::error::{DataError, Result};
use crate::hub::{load_from_hub, HubConfig};
use crate::sample::load_sample;

/// Names the directory [`Resolver::from_env`] searches instead of [`repo_datasets_dir`]: a
/// copied or installed binary still points at the source tree it was built from.
pub const REPO_DATASETS_ENV: &str = "STRIDE_REPO_DATASETS";
/// Where the Debian/Ubuntu `dataset-*` packages install their data.
pub const SYSTEM_DIR: &str = "/usr/share/datasets";

/// How logs and reports name the embedded sample.
const SAMPLE_LABEL: &str = "embedded MNIST sample (8,000 train / 2,000 test digits)";

/// Where a dataset was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The directory given by `--data-dir` / `STRIDE_DATA_DIR`.
    DataDir(PathBuf),
    /// `datasets/<name>/` in the repository.
    Repo(PathBuf),
    /// The system package copy, e.g. `/usr/share/datasets/fashion-mnist`.
    System(PathBuf),
    /// The Hugging Face hub (possibly served from its cache).
    Hub {
        /// Repository id, e.g. `ylecun/mnist`.
        repo: String,
    },
    /// The 10,000-digit MNIST sample compiled into the binary.
    Sample,
}

impl Source {
    /// True for the embedded sample, which is smaller than the real dataset.
    pub fn is_sample(&self) -> bool {
        matches!(self, Self::Sample)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DataDir(p) => write!(f, "data directory {}", p.display()),
            Self::Repo(p) => write!(f, "repository copy {}", p.display()),
            Self::System(p) => write!(f, "system package copy {}", p.display()),
            Self::Hub { repo } => write!(f, "Hugging Face hub dataset {repo}"),
            Self::Sample => f.write_str(SAMPLE_LABEL),
        }
    }
}

/// A dataset and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The train and test splits.
    pub splits: Splits,
    /// The source that had them.
    pub source: Source,
}

/// The ordered list of places to look for a dataset.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// Explicit directory (`--data-dir` / `STRIDE_DATA_DIR`); it must hold the data when set.
    pub data_dir: Option<PathBuf>,
    /// The repository's `datasets/` directory.
    pub repo_dir: PathBuf,
    /// Root of system package data (default `/usr/share/datasets`).
    pub system_dir: PathBuf,
    /// Hub access; `None` skips the hub.
    pub hub: Option<HubConfig>,
}

impl Default for Resolver {
    fn default() -> Self {
        Self::from_env()
    }
}

impl Resolver {
    /// Resolution as configured by the environment: `STRIDE_DATA_DIR`, the
    /// repository's `datasets/` (or `STRIDE_REPO_DATASETS`), `/usr/share/datasets`,
    /// and the hub per `HF_*`.
    pub fn from_env() -> Self {
        Self {
            data_dir: std::env::var_os("STRIDE_DATA_DIR").map(PathBuf::from),
            repo_dir: std::env::var_os(REPO_DATASETS_ENV).map_or_else(repo_datasets_dir, PathBuf::from),
            system_dir: PathBuf::from(SYSTEM_DIR),
            hub: HubConfig::from_env(),
        }
    }

    /// Only the sources on this machine: the repository's `datasets/` and the system
    /// package copy; no explicit directory, no hub, nothing read from the environment.
    /// What tests and offline tools want.
    pub fn local() -> Self {
        Self {
            data_dir: None,
            repo_dir: repo_datasets_dir(),
            system_dir: PathBuf::from(SYSTEM_DIR),
            hub: None,
        }
    }

    /// Overrides the explicit directory (e.g. from `--data-dir`) when `dir` is `Some`.
    pub fn with_data_dir(mut self, dir: Option<PathBuf>) -> Self {
        if dir.is_some() {
            self.data_dir = dir;
        }
        self
    }

    /// Finds and loads `name`. A source that has the files but fails to parse
    /// is an error, not a reason to try the next one: corrupt data must be seen.
    pub fn load(&self, name: DatasetName) -> Result<Loaded> {
        if let Some(dir) = &self.data_dir {
            let dir = [dir.clone(), dir.join(name.dir_name())]
                .into_iter()
                .find(|d| has_idx_files(d))
                .ok_or_else(|| DataError::MissingFile {
                    path: dir.clone(),
                    what: format!(
                        "the data directory has no {name} IDX files (train-images-idx3-ubyte[.gz], ...) in it or in {name}/"
                    ),
                })?;
            return found(load_idx_dir(&dir)?, Source::DataDir(dir));
        }
        let mut tried = Vec::new();
        let repo = self.repo_dir.join(name.dir_name());
        if has_idx_files(&repo) {
            return found(load_idx_dir(&repo)?, Source::Repo(repo));
        }
        tried.push(format!("  {}: no IDX files", repo.display()));
        let system = self.system_dir.join(name.dir_name());
        if has_idx_files(&system) {
            return found(load_idx_dir(&system)?, Source::System(system));
        }
        tried.push(format!(
            "  {}: no IDX files{}",
            system.display(),
            if name == DatasetName::FashionMnist {
                " (apt-get install dataset-fashion-mnist provides them)"
            } else {
                ""
            }
        ));
        match &self.hub {
            Some(hub) => match load_from_hub(name, hub) {
                Ok(splits) => {
                    return found(
                        splits,
                        Source::Hub {
                            repo: name.hub_repo().to_string(),
                        },
                    )
                }
                // A corrupt download is an error; an unreachable hub is a fall-through.
                Err(DataError::Hub { repo, message }) => {
                    tracing::info!(%repo, reason = %message, "hub unavailable, trying the next source");
                    tried.push(format!("  hub {repo}: {message}"));
                }
                Err(e) => return Err(e),
            },
            None => tried.push("  hub: no cache directory (set HF_HOME or HOME)".into()),
        }
        if name == DatasetName::Mnist {
            tracing::warn!("using the {SAMPLE_LABEL}, not the full 60,000 / 10,000");
            return found(load_sample()?, Source::Sample);
        }
        Err(DataError::NotFound {
            name: name.to_string(),
            tried: tried.join("\n"),
        })
    }
}

fn found(splits: Splits, source: Source) -> Result<Loaded> {
    tracing::info!(
        %source,
        train = splits.train.len(),
        test = splits.test.len(),
        "dataset loaded"
    );
    Ok(Loaded { splits, source })
}

/// The repository's `datasets/` directory, located from this crate's sources.
pub fn repo_datasets_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
    // Resolved so logs show `/repo/datasets`, not `/repo/crates/stride-data/../../datasets`.
    dir.canonicalize().unwrap_or(dir)
}
