//! The checkpoint loader on arbitrary files, then restoring what it accepts into a model
//! (`mlp 16-8-3 relu`, the SIGKILL test's) and an SGD-with-momentum optimizer.
//!
//! Input layout: `[u32 LE state length][u32 LE model length][state.json][model.safetensors]
//! [optimizer.safetensors]`; `fuzz/seed_checkpoint.sh` packs a real checkpoint this way.
#![no_main]

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use libfuzzer_sys::fuzz_target;
use stride::model::{Activation, Mlp};
use stride::optim::OptimizerKind;
use stride::train::Checkpoint;

fn split(data: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let len = |at: usize| -> Option<usize> {
        let b = data.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let (a, b) = (len(0)?, len(4)?);
    let rest = data.get(8..)?;
    let state = rest.get(..a)?;
    let model = rest.get(a..a.checked_add(b)?)?;
    Some((state, model, &rest[a + b..]))
}

fuzz_target!(|data: &[u8]| {
    let Some((state, model, optimizer)) = split(data) else {
        return;
    };
    let Ok(ckpt) = Checkpoint::from_bytes(Path::new("fuzz-ckpt"), state, model, optimizer) else {
        return;
    };
    let _ = ckpt.expect_model("mlp 16-8-3 relu");
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let Ok(_mlp) = Mlp::new(&"16-8-3".parse().expect("valid spec"), Activation::Relu, vb) else {
        return;
    };
    if ckpt.restore_weights(&varmap).is_ok() {
        if let Ok(mut opt) = OptimizerKind::Sgd.build(varmap.all_vars(), 0.05, Some(0.9), None) {
            let _ = ckpt.restore_optimizer(&varmap, opt.as_mut());
        }
    }
});
