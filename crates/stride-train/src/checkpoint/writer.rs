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
        }
    }
}

/// What the trainer hands over for one checkpoint.
pub(crate) struct SaveRequest<'a> {
    pub position: Position,
    pub optimizer: &'a dyn Optimizer,
    pub plateau: Option<ReduceLrOnPlateau>,
    pub lr_scale: f64,
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
    /// Checks the settings, creates the directory and clears what interrupted writers left.
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
        let mut me = Self {
            vars: named_vars(varmap),
            best: None,
            config,
        };
        me.sweep()?;
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

    /// Writes one checkpoint, points `latest` (and `best`, when its validation loss is the
    /// lowest yet) at it, and prunes; returns its directory.
    pub(crate) fn save(&mut self, req: SaveRequest<'_>) -> Result<PathBuf> {
        let p = &req.position;
        let name = format!("ckpt-s{:010}-e{:05}-b{:06}", p.step, p.epoch, p.batch);
        let dir = self.config.dir.clone();
        let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;

        let weights: HashMap<String, Tensor> = self
            .vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        let model_path = tmp.join(MODEL_FILE);
        candle_core::safetensors::save(&weights, &model_path)?;
        sync_file(&model_path).map_err(|e| io(&model_path, e))?;

        let order = canonical_order(&self.vars, req.optimizer.vars())?;
        let mut optimizer = remap_state(&req.optimizer.state()?, &order, &tmp)?;
        let mut buffers = HashMap::new();
        for b in &mut optimizer.buffers {
            let values = std::mem::take(&mut b.values);
            buffers.insert(
                b.name.clone(),
                Tensor::from_vec(values, b.shape.as_slice(), &candle_core::Device::Cpu)?,
            );
        }
        let opt_path = tmp.join(OPTIMIZER_FILE);
        candle_core::safetensors::save(&buffers, &opt_path)?;
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
        };
        let json = serde_json::to_vec_pretty(&state).map_err(|e| io(&tmp, std::io::Error::other(e)))?;
        let state_path = tmp.join(STATE_FILE);
        write_synced(&state_path, &json).map_err(|e| io(&state_path, e))?;
        sync_dir(&tmp).map_err(|e| io(&tmp, e))?;

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
        tracing::debug!(checkpoint = %target.display(), step = p.step, "checkpoint written");
        Ok(target)
    }

    /// Deletes all but the last `keep_last` checkpoints, sparing the ones `latest` and `best` name.
    fn prune(&self, latest: &str) -> Result<()> {
        let dir = self.dir();
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("ckpt-"))
            .collect();
        names.sort();
        let keep_from = names.len().saturating_sub(self.config.keep_last);
        let best = self.best.as_ref().map(|(_, n)| n.as_str());
        for (i, name) in names.iter().enumerate() {
            if i >= keep_from || name == latest || Some(name.as_str()) == best {
                continue;
            }
            // Renamed first, so a half-deleted checkpoint never looks like a checkpoint.
            let trash = dir.join(format!(".trash-{name}-{}", std::process::id()));
            std::fs::rename(dir.join(name), &trash).map_err(|e| io(&dir.join(name), e))?;
            std::fs::remove_dir_all(&trash).map_err(|e| io(&trash, e))?;
        }
        Ok(())
    }
}
