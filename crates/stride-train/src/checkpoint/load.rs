//! Reading a checkpoint back, and checking it against the run that resumes from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use stride_optim::Optimizer;

use super::remap::{canonical_order, invert, named_vars, remap_state};
use super::state::{CheckpointState, FORMAT_VERSION};
use super::{LATEST, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE};
use crate::error::{CheckpointProblem, Result, TrainError};

/// A checkpoint read from disk and checked for completeness: every file present and of the
/// size its manifest says, every tensor parsed, of the manifest's shape and finite.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The checkpoint's directory.
    pub dir: PathBuf,
    /// Everything but the tensors; the optimizer's buffers are filled in.
    pub state: CheckpointState,
    weights: HashMap<String, Tensor>,
}

fn problem(path: &Path, problem: CheckpointProblem) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        problem,
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            problem(path, CheckpointProblem::Missing { what: what.to_string() })
        } else {
            TrainError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })
}

/// Parses a safetensors file whose size (and checksum, when recorded) the manifest holds.
fn tensors(
    dir: &Path,
    file: &'static str,
    bytes: &[u8],
    expected: u64,
    crc: Option<u32>,
) -> Result<HashMap<String, Tensor>> {
    let path = dir.join(file);
    if bytes.len() as u64 != expected {
        return Err(problem(
            &path,
            CheckpointProblem::Truncated {
                file,
                expected,
                found: bytes.len() as u64,
            },
        ));
    }
    if let Some(expected) = crc {
        let found = crc32fast::hash(bytes);
        if found != expected {
            return Err(problem(&path, CheckpointProblem::Checksum { file, expected, found }));
        }
    }
    candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(|e| {
        problem(
            &path,
            CheckpointProblem::Corrupt {
                file,
                message: e.to_string(),
            },
        )
    })
}

/// Fails on NaN or infinite values, naming the tensor: a poisoned checkpoint would
/// otherwise only show up as a NaN loss after resuming.
fn check_finite(path: &Path, name: &str, t: &Tensor) -> Result<()> {
    let values: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(problem(path, CheckpointProblem::NonFinite { name: name.to_string() }))
    }
}

impl Checkpoint {
    /// The checkpoint directory `path` means: a checkpoint directory itself (it has
    /// `state.json`), a checkpoint root (it has a `latest` pointer), or a pointer file
    /// (`latest`, `best`) whose content names a directory beside it.
    pub fn resolve(path: &Path) -> Result<PathBuf> {
        if path.join(STATE_FILE).is_file() {
            return Ok(path.to_path_buf());
        }
        let (root, pointer) = if path.is_dir() {
            (path.to_path_buf(), path.join(LATEST))
        } else {
            let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (root, path.to_path_buf())
        };
        let text = read(&pointer, "checkpoint (no state.json and no latest pointer)")?;
        let text = String::from_utf8(text).map_err(|_| {
            problem(
                &pointer,
                CheckpointProblem::Corrupt {
                    file: "pointer",
                    message: "not UTF-8 text".into(),
                },
            )
        })?;
        let name = text.trim();
        // A pointer names a sibling directory; anything else would let a file steer us elsewhere.
        let plain = !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..";
        if !plain {
            return Err(problem(
                &pointer,
                CheckpointProblem::Corrupt {
                    file: "pointer",
                    message: format!("{name:?} is not the name of a checkpoint directory"),
                },
            ));
        }
        Ok(root.join(name))
    }

    /// Reads and checks the checkpoint `path` resolves to (see [`Checkpoint::resolve`]).
    pub fn load(path: &Path) -> Result<Self> {
        let dir = Self::resolve(path)?;
        let state = read(&dir.join(STATE_FILE), STATE_FILE)?;
        let model = read(&dir.join(MODEL_FILE), MODEL_FILE)?;
        let optimizer = read(&dir.join(OPTIMIZER_FILE), OPTIMIZER_FILE)?;
        Self::from_bytes(&dir, &state, &model, &optimizer)
    }

    /// Checks a checkpoint given the contents of its three files; `dir` names it in errors.
    pub fn from_bytes(dir: &Path, state: &[u8], model: &[u8], optimizer: &[u8]) -> Result<Self> {
        let dir = dir.to_path_buf();
        let state_path = dir.join(STATE_FILE);
        let mut state: CheckpointState = serde_json::from_slice(state).map_err(|e| {
            problem(
                &state_path,
                CheckpointProblem::Corrupt {
                    file: STATE_FILE,
                    message: e.to_string(),
                },
            )
        })?;
        if state.format != FORMAT_VERSION {
            return Err(problem(
                &state_path,
                CheckpointProblem::Version {
                    expected: FORMAT_VERSION,
                    found: state.format,
                },
            ));
        }
        let model_path = dir.join(MODEL_FILE);
        let weights = tensors(&dir, MODEL_FILE, model, state.model_bytes, state.model_crc32)?;
        for entry in &state.tensors {
            let t = weights.get(&entry.name).ok_or_else(|| {
                problem(
                    &model_path,
                    CheckpointProblem::MissingTensor {
                        name: entry.name.clone(),
                    },
                )
            })?;
            if t.dims() != entry.shape.as_slice() {
                return Err(problem(
                    &model_path,
                    CheckpointProblem::Shape {
                        name: entry.name.clone(),
                        expected: entry.shape.clone(),
                        found: t.dims().to_vec(),
                    },
                ));
            }
            check_finite(&model_path, &entry.name, t)?;
        }
        if let Some(extra) = weights.keys().find(|k| !state.tensors.iter().any(|e| &e.name == *k)) {
            return Err(problem(
                &model_path,
                CheckpointProblem::UnexpectedTensor { name: extra.clone() },
            ));
        }
        let opt_path = dir.join(OPTIMIZER_FILE);
        let buffers = tensors(
            &dir,
            OPTIMIZER_FILE,
            optimizer,
            state.optimizer_bytes,
            state.optimizer_crc32,
        )?;
        for b in &mut state.optimizer.buffers {
            let t = buffers
                .get(&b.name)
                .ok_or_else(|| problem(&opt_path, CheckpointProblem::MissingTensor { name: b.name.clone() }))?;
            if t.dims() != b.shape.as_slice() {
                return Err(problem(
                    &opt_path,
                    CheckpointProblem::Shape {
                        name: b.name.clone(),
                        expected: b.shape.clone(),
                        found: t.dims().to_vec(),
                    },
                ));
            }
            b.values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        }
        Ok(Self { dir, state, weights })
    }

    /// The model's variables by name, as saved.
    pub fn weights(&self) -> &HashMap<String, Tensor> {
        &self.weights
    }

    /// Fails unless the checkpoint holds the model `model` describes (e.g. `mlp 784-128-10 relu`).
    pub fn expect_model(&self, model: &str) -> Result<()> {
        if self.state.model == model {
            Ok(())
        } else {
            Err(problem(
                &self.dir,
                CheckpointProblem::ModelMismatch {
                    expected: model.to_string(),
                    found: self.state.model.clone(),
                },
            ))
        }
    }

    /// Copies the saved weights into `varmap`'s variables, after checking that every
    /// variable has a tensor of its shape and no tensor is left over (nothing is changed
    /// when a check fails).
    pub fn restore_weights(&self, varmap: &VarMap) -> Result<()> {
        let model_path = self.dir.join(MODEL_FILE);
        let vars = named_vars(varmap);
        for (name, var) in &vars {
            let t = self
                .weights
                .get(name)
                .ok_or_else(|| problem(&model_path, CheckpointProblem::MissingTensor { name: name.clone() }))?;
            if t.dims() != var.dims() {
                return Err(problem(
                    &model_path,
                    CheckpointProblem::Shape {
                        name: name.clone(),
                        expected: var.dims().to_vec(),
                        found: t.dims().to_vec(),
                    },
                ));
            }
        }
        if let Some(extra) = self.weights.keys().find(|k| !vars.iter().any(|(n, _)| n == *k)) {
            return Err(problem(
                &model_path,
                CheckpointProblem::UnexpectedTensor { name: extra.clone() },
            ));
        }
        for (name, var) in &vars {
            if let Some(t) = self.weights.get(name) {
                var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)?;
            }
        }
        Ok(())
    }

    /// Loads the saved optimizer state into `optimizer`, whose variables must all be in `varmap`.
    pub fn restore_optimizer(&self, varmap: &VarMap, optimizer: &mut dyn Optimizer) -> Result<()> {
        let saved = &self.state.optimizer;
        let current = optimizer.state()?;
        if saved.kind != current.kind {
            return Err(problem(
                &self.dir,
                CheckpointProblem::RunMismatch {
                    name: "optimizer",
                    saved: saved.kind.clone(),
                    current: current.kind,
                },
            ));
        }
        let order = canonical_order(&named_vars(varmap), optimizer.vars())?;
        let live = remap_state(saved, &invert(&order), &self.dir)?;
        optimizer.load_state(&live).map_err(|e| {
            problem(
                &self.dir.join(OPTIMIZER_FILE),
                CheckpointProblem::Corrupt {
                    file: OPTIMIZER_FILE,
                    message: e.to_string(),
                },
            )
        })
    }
}
