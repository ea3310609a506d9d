//! Writing checkpoints: atomically, keeping the last N and the best.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use stride_optim::schedule::ReduceLrOnPlateau;
use stride_optim::Optimizer;

use super::atomic::{sync_dir, sync_file, write_pointer, write_synced};
use super::remap::{canonical_order, named_vars, remap_state};
use super::state::{CheckpointState, Position, TensorEntry, FORMAT_VERSION};
use super::{BEST, LATEST, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE};
use crate::error::{CheckpointProblem, Result, TrainError};

/// Where and how often the trainer writes checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointConfig {
    /// Directory of the checkpoints and the `latest` / `best` pointers (created if absent).
    pub dir: PathBuf,
    /// Also write one every this many optimizer steps, mid-epoch included (default: only at
    /// the end of every epoch).
    pub every_steps: Option<u64>,
    /// Checkpoints kept besides `best` (default 3, at least 1).
    pub keep_last: usize,
    /// What the model is, e.g. `mlp 784-128-10 relu`; a resume into another model is refused.
    pub model: String,
    /// The run's configuration, stored as is in `state.json` (default null).
    pub run: serde_json::Value,
    /// The dataset trained on, e.g. `fashion-mnist` (default: not recorded); a resume on
    /// another dataset is refused.
    pub dataset: Option<String>,
    /// What to do when the directory already holds checkpoints (default: refuse).
    pub existing: ExistingRun,
}

/// What a [`Checkpointer`] does with checkpoints already in its directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExistingRun {
    /// Fail at start: a fresh run would mix its checkpoints (and `best`) with another run's.
    #[default]
    Refuse,
    /// They are this run's own: it resumes from one of them.
    Resume,
    /// Delete them (and the pointers) before the first checkpoint of this run.
    Overwrite,
}

impl CheckpointConfig {
    /// Checkpoints of `model` in `dir` at every epoch end, keeping the last 3.
    pub fn new(dir: impl Into<PathBuf>, model: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            every_steps: None,
            keep_last: 3,
            model: model.into(),
            run: serde_json::Value::Null,
            dataset: None,
            existing: ExistingRun::Refuse,
        }
    }
}

/// What the trainer hands over for one checkpoint.
pub(crate) struct SaveRequest<'a> {
    pub position: Position,
    pub optimizer: &'a dyn Optimizer,
    pub plateau: Option<ReduceLrOnPlateau>,
    pub lr_scale: f64,
    pub base_lr: f64,
    pub callbacks: Vec<serde_json::Value>,
    pub val_loss: Option<f64>,
    pub seed: u64,
    pub batch_size: usize,
}

/// Writes checkpoints of one model's variables; held by the trainer.
pub struct Checkpointer {
    config: CheckpointConfig,
    vars: Vec<(String, Var)>,
    best: Option<(f64, String)>,
    _lock: DirLock,
}

fn io(path: &Path, source: std::io::Error) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        problem: CheckpointProblem::Io {
            file: path.display().to_string(),
            source,
        },
    }
}

impl Checkpointer {
    /// Checks the settings, creates and locks the directory, clears what interrupted writers
    /// left, and applies [`CheckpointConfig::existing`] to checkpoints of an earlier run.
    pub fn new(config: CheckpointConfig, varmap: &VarMap) -> Result<Self> {
        if config.keep_last == 0 {
            return Err(TrainError::Config {
                name: "keep_last",
                value: "0".into(),
                message: "expected at least 1 checkpoint kept",
            });
        }
        if config.every_steps == Some(0) {
            return Err(TrainError::Config {
                name: "checkpoint_every",
                value: "0".into(),
                message: "expected at least 1 step between checkpoints",
            });
        }
        std::fs::create_dir_all(&config.dir).map_err(|e| io(&config.dir, e))?;
        let lock = DirLock::acquire(&config.dir)?;
        let mut me = Self {
            vars: named_vars(varmap),
            best: None,
            config,
            _lock: lock,
        };
        me.sweep()?;
        me.claim()?;
        me.best = me.read_best();
        Ok(me)
    }

    /// The settings.
    pub fn config(&self) -> &CheckpointConfig {
        &self.config
    }

    /// The directory of the checkpoints.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// The validation loss of the checkpoint `best` names, if it can be read.
    fn read_best(&self) -> Option<(f64, String)> {
        let name = std::fs::read_to_string(self.dir().join(BEST)).ok()?.trim().to_string();
        let text = std::fs::read(self.dir().join(&name).join(STATE_FILE)).ok()?;
        let state: CheckpointState = serde_json::from_slice(&text).ok()?;
        Some((state.val_loss?, name))
    }

    /// Deletes what a killed writer left behind: temp directories, pointer temps, trash.
    fn sweep(&self) -> Result<()> {
        let entries = std::fs::read_dir(self.dir()).map_err(|e| io(self.dir(), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(".tmp-") || name.starts_with(".trash-") {
                std::fs::remove_dir_all(&path).map_err(|e| io(&path, e))?;
            } else if name.starts_with(&format!(".{LATEST}.tmp-")) || name.starts_with(&format!(".{BEST}.tmp-")) {
                std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
            }
        }
        Ok(())
    }

    /// Refuses or clears an earlier run's checkpoints, as configured.
    fn claim(&self) -> Result<()> {
        let dir = self.dir();
        let latest = std::fs::read_to_string(dir.join(LATEST)).ok();
        let names = checkpoint_names(dir)?;
        match self.config.existing {
            ExistingRun::Resume => Ok(()),
            ExistingRun::Refuse => match latest.or_else(|| names.last().cloned()) {
                Some(latest) => Err(TrainError::Checkpoint {
                    path: dir.to_path_buf(),
                    problem: CheckpointProblem::OtherRun {
                        latest: latest.trim().to_string(),
                    },
                }),
                None => Ok(()),
            },
            ExistingRun::Overwrite => {
                for pointer in [LATEST, BEST] {
                    let path = dir.join(pointer);
                    if path.exists() {
                        std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
                    }
                }
                for name in names {
                    self.discard(&name)?;
                }
                Ok(())
            }
        }
    }

    /// Deletes checkpoint `name`, renamed first so a half-deleted one never looks like a checkpoint.
    fn discard(&self, name: &str) -> Result<()> {
        let dir = self.dir();
        let trash = dir.join(format!(".trash-{name}-{}", std::process::id()));
        std::fs::rename(dir.join(name), &trash).map_err(|e| io(&dir.join(name), e))?;
        std::fs::remove_dir_all(&trash).map_err(|e| io(&trash, e))
    }

    /// Writes one checkpoint, points `latest` (and `best`, when its validation loss is the
    /// lowest yet) at it, and prunes; returns its directory.
    pub(crate) fn save(&mut self, req: SaveRequest<'_>) -> Result<PathBuf> {
        let p = &req.position;
        let step = p.step;
        // Named for people: the (1-based) epoch it continues in and the batches of it done.
        let name = format!("ckpt-s{:010}-e{:05}-b{:06}", p.step, p.epoch + 1, p.batch);
        let dir = self.config.dir.clone();
        let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
        let written = self.write_files(&tmp, req);
        if written.is_err() {
            // A failed write (a full disk) leaves nothing behind.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        let val_loss = written?;

        let target = dir.join(&name);
        if target.exists() {
            // Same position written again (a resumed run): never delete before the new one is in place.
            let trash = dir.join(format!(".trash-{name}-{}", std::process::id()));
            std::fs::rename(&target, &trash).map_err(|e| io(&target, e))?;
            std::fs::rename(&tmp, &target).map_err(|e| io(&target, e))?;
            std::fs::remove_dir_all(&trash).map_err(|e| io(&trash, e))?;
        } else {
            std::fs::rename(&tmp, &target).map_err(|e| io(&target, e))?;
        }
        sync_dir(&dir).map_err(|e| io(&dir, e))?;
        write_pointer(&dir, LATEST, &name).map_err(|e| io(&dir.join(LATEST), e))?;
        if let Some(v) = val_loss {
            if self.best.as_ref().is_none_or(|(b, _)| v < *b) {
                write_pointer(&dir, BEST, &name).map_err(|e| io(&dir.join(BEST), e))?;
                self.best = Some((v, name.clone()));
            }
        }
        self.prune(&name)?;
        tracing::debug!(checkpoint = %target.display(), step, "checkpoint written");
        Ok(target)
    }

    /// Writes the three files of a checkpoint into `tmp`, fsynced; the validation loss kept.
    fn write_files(&self, tmp: &Path, req: SaveRequest<'_>) -> Result<Option<f64>> {
        let weights: HashMap<String, Tensor> = self
            .vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        let model_path = tmp.join(MODEL_FILE);
        let crc = |path: &Path| {
            std::fs::read(path)
                .map(|b| crc32fast::hash(&b))
                .map_err(|e| io(path, e))
        };
        save_tensors(&weights, &model_path)?;
        sync_file(&model_path).map_err(|e| io(&model_path, e))?;

        let order = canonical_order(&self.vars, req.optimizer.vars())?;
        let mut optimizer = remap_state(&req.optimizer.state()?, &order, tmp)?;
        let mut buffers = HashMap::new();
        for b in &mut optimizer.buffers {
            let values = std::mem::take(&mut b.values);
            buffers.insert(
                b.name.clone(),
                Tensor::from_vec(values, b.shape.as_slice(), &candle_core::Device::Cpu)?,
            );
        }
        let opt_path = tmp.join(OPTIMIZER_FILE);
        save_tensors(&buffers, &opt_path)?;
        sync_file(&opt_path).map_err(|e| io(&opt_path, e))?;

        let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).map_err(|e| io(path, e));
        let val_loss = req.val_loss.filter(|v| v.is_finite());
        let state = CheckpointState {
            format: FORMAT_VERSION,
            model: self.config.model.clone(),
            run: self.config.run.clone(),
            seed: req.seed,
            batch_size: req.batch_size,
            position: req.position.clone(),
            optimizer,
            plateau: req.plateau,
            lr_scale: req.lr_scale,
            base_lr: Some(req.base_lr),
            dataset: self.config.dataset.clone(),
            callbacks: req.callbacks,
            val_loss,
            tensors: self
                .vars
                .iter()
                .map(|(n, v)| TensorEntry {
                    name: n.clone(),
                    shape: v.dims().to_vec(),
                })
                .collect(),
            model_bytes: size(&model_path)?,
            optimizer_bytes: size(&opt_path)?,
            model_crc32: Some(crc(&model_path)?),
            optimizer_crc32: Some(crc(&opt_path)?),
        };
        let json = serde_json::to_vec_pretty(&state).map_err(|e| io(tmp, std::io::Error::other(e)))?;
        let state_path = tmp.join(STATE_FILE);
        write_synced(&state_path, &json).map_err(|e| io(&state_path, e))?;
        sync_dir(tmp).map_err(|e| io(tmp, e))?;
        Ok(val_loss)
    }

    /// Deletes all but the last `keep_last` checkpoints, sparing the ones `latest` and `best` name.
    fn prune(&self, latest: &str) -> Result<()> {
        let dir = self.dir();
        let names = checkpoint_names(dir)?;
        let keep_from = names.len().saturating_sub(self.config.keep_last);
        let best = self.best.as_ref().map(|(_, n)| n.as_str());
        for (i, name) in names.iter().enumerate() {
            if i >= keep_from || name == latest || Some(name.as_str()) == best {
                continue;
            }
            self.discard(name)?;
        }
        Ok(())
    }
}

/// Writes a safetensors file; a failure names the file (candle's own error does not).
fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    candle_core::safetensors::save(tensors, path).map_err(|e| match e {
        candle_core::Error::Io(source) => io(path, source),
        other => io(path, std::io::Error::other(other.to_string())),
    })
}

/// The checkpoint directories in `dir`, oldest first (the names sort by step).
fn checkpoint_names(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ckpt-"))
        .collect();
    names.sort();
    Ok(names)
}

/// File that marks a checkpoint directory as owned by one process.
pub const LOCK_FILE: &str = ".lock";

/// A checkpoint directory's lock: a file holding the owner's pid, removed on drop. A lock
/// whose process is gone (killed, crashed) is stale and taken over.
struct DirLock {
    path: PathBuf,
}

impl DirLock {
    fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let me = std::process::id();
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    writeln!(f, "{me}").map_err(|e| io(&path, e))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    match text.trim().parse::<u32>() {
                        // The same process (a resumed trainer beside the first): not another writer.
                        Ok(pid) if pid == me => return Ok(Self { path }),
                        Ok(pid) if process_alive(pid) => {
                            return Err(TrainError::Checkpoint {
                                path: dir.to_path_buf(),
                                problem: CheckpointProblem::Locked {
                                    pid,
                                    lock: path.display().to_string(),
                                },
                            })
                        }
                        _ => {
                            tracing::warn!(lock = %path.display(), "taking over a stale checkpoint lock ({:?})", text.trim());
                            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
                        }
                    }
                }
                Err(e) => return Err(io(&path, e)),
            }
        }
        Err(io(
            &path,
            std::io::Error::other("the lock file keeps reappearing: another process is starting here"),
        ))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mine = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            == Some(std::process::id());
        if mine {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether process `pid` exists (a signal-0 probe; "not permitted" still means it exists).
#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Without a portable probe, a lock is assumed held.
#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}
