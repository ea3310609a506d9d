//! The MLP's own CPU forward and backward with softmax cross-entropy.
//!
//! candle's autograd is general, and on a small MLP the generality is most of
//! the cost: it computes the gradient of every input, the data batch included
//! (+49 % multiply-adds on the reference workload), creates every gradient slot
//! as zeros and adds into it, copies transposed weight gradients, and runs
//! bias, activation and the softmax as separate passes. This path computes
//! only the weight and bias gradients, writes each once, fuses bias +
//! activation (and its derivative) and softmax + loss, gathers the batch
//! straight from the training set, and splits the large products over the
//! two cores with a team of spinning threads (candle's ~100 us kernels gain
//! nothing from the second core: waking a parked rayon worker takes too long).
//!
//! It is an optimisation of the built-in MLP only: any other model trains
//! through candle's autograd, and the gradients here are tested against it.

use std::ops::Deref;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, Device, Layout, Storage, Tensor};
use gemm::Parallelism;

use crate::mlp::Activation;
use stride_cpu::{team, DisjointMut};

/// Loss and gradients of one fused training step.
#[derive(Debug)]
pub struct FusedGrads {
    /// Mean cross-entropy over the batch.
    pub loss: f32,
    /// Rows whose largest logit is their label's (the first largest, as `argmax`).
    pub correct: u32,
    /// Gradient of the loss for every weight and bias, keyed like candle's autograd.
    pub grads: GradStore,
    /// Sum of the squares of every gradient entry, formed while the gradients were in
    /// cache (the monitor watches the gradient norm every step).
    pub grad_sq_norm: f64,
    /// Where the step's time went.
    pub times: PhaseTimes,
}

/// Time a fused step spent in each phase.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseTimes {
    /// Gathering the batch rows out of the training set.
    pub data: Duration,
    /// Forward pass, softmax and loss.
    pub forward: Duration,
    /// Weight and bias gradients.
    pub backward: Duration,
}

/// Buffers reused from step to step, so a step allocates only its gradients.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    x: Vec<f32>,
    /// Per layer, the pre-activation values (hidden layers) or the logits (last).
    pre: Vec<Vec<f32>>,
    /// Per hidden layer, the activations fed to the next layer.
    act: Vec<Vec<f32>>,
    /// Per layer, the gradient of the loss for the layer's pre-activation values.
    delta: Vec<Vec<f32>>,
}

/// What the MLP keeps for the fused path.
#[derive(Debug, Default)]
pub(crate) struct FusedState {
    workspace: Mutex<Workspace>,
}

impl Clone for FusedState {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// One linear layer's tensors.
pub(crate) struct LayerRef<'a> {
    pub weight: &'a Tensor,
    pub bias: Option<&'a Tensor>,
}

/// A read lock on a tensor's storage, for borrowing it as an f32 slice.
struct Held<'a, G> {
    guard: G,
    layout: &'a Layout,
}

/// Locks `t`'s storage for reading if it lives on the CPU.
fn hold(t: &Tensor) -> Option<Held<'_, impl Deref<Target = Storage> + '_>> {
    if !matches!(t.device(), Device::Cpu) {
        return None;
    }
    let (guard, layout) = t.storage_and_layout();
    Some(Held { guard, layout })
}

impl<G: Deref<Target = Storage>> Held<'_, G> {
    fn f32(&self) -> Option<&[f32]> {
        match (&*self.guard, self.layout.contiguous_offsets()) {
            (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => v.get(a..b),
            _ => None,
        }
    }

    /// Class labels as indices, whatever integer type holds them.
    fn labels(&self, rows: &[u32], classes: usize) -> Option<std::result::Result<Vec<usize>, String>> {
        let (a, b) = self.layout.contiguous_offsets()?;
        let get = |r: usize| -> Option<i64> {
            match &*self.guard {
                Storage::Cpu(CpuStorage::U32(v)) => v.get(a..b)?.get(r).map(|&l| i64::from(l)),
                Storage::Cpu(CpuStorage::U8(v)) => v.get(a..b)?.get(r).map(|&l| i64::from(l)),
                Storage::Cpu(CpuStorage::I64(v)) => v.get(a..b)?.get(r).copied(),
                _ => None,
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for &r in rows {
            let label = get(r as usize)?;
            match usize::try_from(label) {
                Ok(l) if l < classes => out.push(l),
                _ => {
                    return Some(Err(format!(
                        "label {label} of example {r} is outside 0..{classes} (the model's output width)"
                    )))
                }
            }
        }
        Some(Ok(out))
    }
}

/// A read-only strided matrix: element (i, j) at `ptr[i * rs + j * cs]`.
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

// SAFETY: a View only ever reads memory that outlives the parallel region it is sent into.
unsafe impl Send for View {}
unsafe impl Sync for View {}

/// Below this many multiply-adds per step the work stays on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 20;

/// First index of part `part` of `parts` over `n`, in multiples of 8 (the kernels' tiles)
/// where `n` allows.
fn part_start(part: usize, parts: usize, n: usize) -> usize {
    if part >= parts {
        n
    } else if n >= 8 * parts {
        (n * part / parts) / 8 * 8
    } else {
        n * part / parts
    }
}

/// `c[m x n]` (row-major, fully written, never read) `= a[m x k] * b[k x n]` on this thread.
///
/// # Safety
/// `a` and `b` must address valid `m x k` and `k x n` matrices.
unsafe fn matmul(c: &mut [f32], m: usize, n: usize, k: usize, a: View, b: View) {
    assert!(c.len() >= m * n, "fused MLP: product buffer too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    gemm::gemm(
        m,
        n,
        k,
        c.as_mut_ptr(),
        1,
        n as isize,
        false,
        a.ptr,
        a.cs,
        a.rs,
        b.ptr,
        b.cs,
        b.rs,
        0.0,
        1.0,
        false,
        false,
        false,
        Parallelism::None,
    );
}

/// Activations with a fused kernel here; the others train through autograd.
pub(crate) fn supported(activation: Activation) -> bool {
    matches!(activation, Activation::Relu | Activation::Tanh | Activation::Sigmoid)
}

/// `act = f(pre + bias)`, keeping `pre + bias` in `pre` (the derivative of ReLU reads it).
fn bias_activation(pre: &mut [f32], act: &mut [f32], bias: Option<&[f32]>, width: usize, activation: Activation) {
    for (z_row, a_row) in pre.chunks_exact_mut(width).zip(act.chunks_exact_mut(width)) {
        if let Some(b) = bias {
            for (z, &b) in z_row.iter_mut().zip(b) {
                *z += b;
            }
        }
        match activation {
            Activation::Tanh => a_row.iter_mut().zip(z_row.iter()).for_each(|(a, &z)| *a = z.tanh()),
            Activation::Sigmoid => a_row
                .iter_mut()
                .zip(z_row.iter())
                .for_each(|(a, &z)| *a = 1.0 / (1.0 + (-z).exp())),
            _ => a_row.iter_mut().zip(z_row.iter()).for_each(|(a, &z)| *a = z.max(0.0)),
        }
    }
}

/// `delta *= f'(z)`, as candle's autograd forms it (ReLU passes where z >= 0).
fn activation_grad(delta: &mut [f32], pre: &[f32], act: &[f32], activation: Activation) {
    match activation {
        Activation::Tanh => delta.iter_mut().zip(act).for_each(|(d, &a)| *d *= 1.0 - a * a),
        Activation::Sigmoid => delta.iter_mut().zip(act).for_each(|(d, &a)| *d *= a * (1.0 - a)),
        _ => delta
            .iter_mut()
            .zip(pre)
            .for_each(|(d, &z)| *d = if z >= 0.0 { *d } else { 0.0 }),
    }
}

/// Adds `bias` to every row of the logits, then forms the cross-entropy of each row and,
/// in place, its gradient `(softmax - onehot) * scale`; returns the sum of the rows' losses
/// and how many rows were classified right.
fn softmax_cross_entropy(
    logits: &mut [f32],
    bias: Option<&[f32]>,
    labels: &[usize],
    classes: usize,
    scale: f32,
) -> (f64, u32) {
    let mut total = 0.0f64;
    let mut correct = 0u32;
    for (row, &label) in logits.chunks_exact_mut(classes).zip(labels) {
        if let Some(b) = bias {
            row.iter_mut().zip(b).for_each(|(z, &b)| *z += b);
        }
        let (argmax, max) =
            row.iter().copied().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |best, (i, z)| if z > best.1 { (i, z) } else { best },
            );
        correct += u32::from(argmax == label);
        // log p = (z - max) - ln(sum), as candle's log_softmax: finite even when exp(z - max)
        // underflows to 0 (huge logits after a too-large step), where ln(p) would be -inf.
        let shifted = row[label] - max;
        let mut sum = 0.0f32;
        for z in row.iter_mut() {
            *z = (*z - max).exp();
            sum += *z;
        }
        total -= f64::from(shifted - sum.ln());
        let inv = scale / sum;
        row.iter_mut().for_each(|p| *p *= inv);
        row[label] -= scale;
    }
    (total, correct)
}

/// A layer's weights (`out x inp`, row-major) and bias as slices.
#[derive(Clone, Copy)]
struct Dense<'a> {
    w: &'a [f32],
    b: Option<&'a [f32]>,
    out: usize,
    inp: usize,
}

/// One fused step: loss and gradients for rows `rows` of (`x`, `y`), or `None` when the
/// tensors are not contiguous CPU f32 inputs with integer labels (the caller then uses autograd).
pub(crate) fn step(
    state: &FusedState,
    layers: &[LayerRef<'_>],
    activation: Activation,
    x: &Tensor,
    y: &Tensor,
    rows: &[u32],
) -> candle_core::Result<Option<FusedGrads>> {
    if !supported(activation) || layers.is_empty() || rows.is_empty() {
        return Ok(None);
    }
    let (Some(xh), Some(yh)) = (hold(x), hold(y)) else {
        return Ok(None);
    };
    let Some(x_all) = xh.f32() else {
        return Ok(None);
    };
    let held: Option<Vec<_>> = layers
        .iter()
        .map(|l| {
            let w = hold(l.weight)?;
            let b = match l.bias {
                Some(b) => Some(hold(b)?),
                None => None,
            };
            Some((w, b))
        })
        .collect();
    let Some(held) = held else {
        return Ok(None);
    };
    let mut params: Vec<Dense<'_>> = Vec::with_capacity(layers.len());
    let mut width = x.dims().get(1).copied().unwrap_or(0);
    for (layer, (w, b)) in layers.iter().zip(&held) {
        let (out, inp) = layer.weight.dims2()?;
        if inp != width {
            candle_core::bail!("fused MLP: layer expects {inp} inputs, gets {width}");
        }
        let Some(w) = w.f32() else { return Ok(None) };
        let b = match b {
            Some(b) => match b.f32() {
                Some(s) if s.len() == out => Some(s),
                _ => return Ok(None),
            },
            None => None,
        };
        params.push(Dense { w, b, out, inp });
        width = out;
    }
    let classes = width;
    let input = params[0].inp;
    if x.rank() != 2 || x_all.len() != x.dims()[0] * input {
        return Ok(None);
    }
    let examples = x.dims()[0];
    if y.dims() != [examples] {
        // Labels as one index per example only; anything else (one-hot rows, ...) is autograd's.
        return Ok(None);
    }
    if let Some(&bad) = rows.iter().find(|&&r| r as usize >= examples) {
        candle_core::bail!("fused MLP: example index {bad} is past the {examples} examples");
    }
    let labels = match yh.labels(rows, classes) {
        None => return Ok(None),
        Some(Err(message)) => candle_core::bail!("cross-entropy: {message}"),
        Some(Ok(labels)) => labels,
    };

    let mut guard = state.workspace.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let ws = &mut *guard;
    let started = Instant::now();
    let batch = rows.len();
    let depth = params.len();
    ws.x.resize(batch * input, 0.0);
    ws.pre.resize_with(depth, Vec::new);
    ws.act.resize_with(depth - 1, Vec::new);
    ws.delta.resize_with(depth, Vec::new);
    for (l, p) in params.iter().enumerate() {
        ws.pre[l].resize(batch * p.out, 0.0);
        ws.delta[l].resize(batch * p.out, 0.0);
        if l + 1 < depth {
            ws.act[l].resize(batch * p.out, 0.0);
        }
    }
    // A batch that is the whole input, in order (the LR finder passes batches it built
    // itself), is read where it lies instead of copied.
    let in_place = batch == examples && rows.iter().enumerate().all(|(i, &r)| r as usize == i);
    let macs: usize = params.iter().map(|p| batch * p.out * p.inp).sum();
    let team = team();
    let parts = if macs >= PARALLEL_MIN_MACS { team.size() } else { 1 };
    let x_buf = DisjointMut::new(&mut ws.x);
    let pre: Vec<DisjointMut<'_, f32>> = ws.pre.iter_mut().map(|v| DisjointMut::new(v)).collect();
    let act: Vec<DisjointMut<'_, f32>> = ws.act.iter_mut().map(|v| DisjointMut::new(v)).collect();
    let delta: Vec<DisjointMut<'_, f32>> = ws.delta.iter_mut().map(|v| DisjointMut::new(v)).collect();
    let losses: Vec<Mutex<f64>> = (0..parts).map(|_| Mutex::new(0.0)).collect();
    let hits: Vec<Mutex<f64>> = (0..parts).map(|_| Mutex::new(0.0)).collect();
    let squares: Vec<Mutex<f64>> = (0..parts).map(|_| Mutex::new(0.0)).collect();
    let marks: Mutex<[Option<Instant>; 2]> = Mutex::new([None; 2]);
    let scale = 1.0 / batch as f32;

    // Job 1, rows split over the team: gather, forward, loss and every layer's delta are
    // row-local, so each part runs them on its own rows without waiting for the others.
    let forward_and_deltas = |part: usize| {
        let (r0, r1) = (part_start(part, parts, batch), part_start(part + 1, parts, batch));
        if r0 == r1 {
            return;
        }
        let n = r1 - r0;
        // SAFETY: every buffer is touched at rows r0..r1 only, which belong to this part.
        unsafe {
            let xs: &[f32] = if in_place {
                &x_all[r0 * input..r1 * input]
            } else {
                let xs = x_buf.range(r0 * input, r1 * input);
                for (out, &r) in xs.chunks_exact_mut(input).zip(&rows[r0..r1]) {
                    let r = r as usize;
                    out.copy_from_slice(&x_all[r * input..(r + 1) * input]);
                }
                xs
            };
            let gathered = Instant::now();
            for (l, &Dense { w, b, out, inp }) in params.iter().enumerate() {
                let a: &[f32] = if l == 0 {
                    xs
                } else {
                    act[l - 1].range(r0 * inp, r1 * inp)
                };
                let z = pre[l].range(r0 * out, r1 * out);
                matmul(
                    z,
                    n,
                    out,
                    inp,
                    View {
                        ptr: a.as_ptr(),
                        rs: inp as isize,
                        cs: 1,
                    },
                    View {
                        ptr: w.as_ptr(),
                        rs: 1,
                        cs: inp as isize,
                    },
                );
                if l + 1 < depth {
                    bias_activation(z, act[l].range(r0 * out, r1 * out), b, out, activation);
                }
            }
            let last = &params[depth - 1];
            let d = delta[depth - 1].range(r0 * last.out, r1 * last.out);
            d.copy_from_slice(pre[depth - 1].range(r0 * last.out, r1 * last.out));
            let (loss, correct) = softmax_cross_entropy(d, last.b, &labels[r0..r1], classes, scale);
            *losses[part].lock().unwrap_or_else(|p| p.into_inner()) = loss;
            *hits[part].lock().unwrap_or_else(|p| p.into_inner()) = f64::from(correct);
            if part == 0 {
                *marks.lock().unwrap_or_else(|p| p.into_inner()) = [Some(gathered), Some(Instant::now())];
            }
            for l in (1..depth).rev() {
                let Dense { w, out, inp, .. } = params[l];
                let d_next = delta[l].range(r0 * out, r1 * out);
                let d_prev = delta[l - 1].range(r0 * inp, r1 * inp);
                matmul(
                    d_prev,
                    n,
                    inp,
                    out,
                    View {
                        ptr: d_next.as_ptr(),
                        rs: out as isize,
                        cs: 1,
                    },
                    View {
                        ptr: w.as_ptr(),
                        rs: inp as isize,
                        cs: 1,
                    },
                );
                activation_grad(
                    d_prev,
                    pre[l - 1].range(r0 * inp, r1 * inp),
                    act[l - 1].range(r0 * inp, r1 * inp),
                    activation,
                );
            }
        }
    };
    if parts == 1 {
        forward_and_deltas(0);
    } else {
        team.run(&forward_and_deltas);
    }

    // Job 2, output units split over the team: dW = delta^T a and db = column sums of delta
    // need every row, so they wait for job 1. The data batch's own gradient is never formed.
    let mut dws: Vec<Vec<f32>> = params.iter().map(|p| vec![0.0; p.out * p.inp]).collect();
    let mut dbs: Vec<Vec<f32>> = params.iter().map(|p| vec![0.0; p.out]).collect();
    let dw_bufs: Vec<DisjointMut<'_, f32>> = dws.iter_mut().map(|v| DisjointMut::new(v)).collect();
    let db_bufs: Vec<DisjointMut<'_, f32>> = dbs.iter_mut().map(|v| DisjointMut::new(v)).collect();
    let weight_grads = |part: usize| {
        let mut sq = 0.0f64;
        for (l, &Dense { out, inp, .. }) in params.iter().enumerate() {
            // A layer too narrow to split goes whole to one part.
            let (o0, o1) = if out >= 8 * parts {
                (part_start(part, parts, out), part_start(part + 1, parts, out))
            } else if l % parts == part {
                (0, out)
            } else {
                continue;
            };
            if o0 == o1 {
                continue;
            }
            // SAFETY: job 1 has joined, so delta and the activations are only read now;
            // rows o0..o1 of dW and entries o0..o1 of db belong to this part.
            unsafe {
                let d = delta[l].all();
                let a: &[f32] = match l {
                    0 if in_place => x_all,
                    0 => x_buf.all(),
                    _ => act[l - 1].all(),
                };
                matmul(
                    dw_bufs[l].range(o0 * inp, o1 * inp),
                    o1 - o0,
                    inp,
                    batch,
                    View {
                        ptr: d.as_ptr().add(o0),
                        rs: 1,
                        cs: out as isize,
                    },
                    View {
                        ptr: a.as_ptr(),
                        rs: inp as isize,
                        cs: 1,
                    },
                );
                let db = db_bufs[l].range(o0, o1);
                for row in d.chunks_exact(out) {
                    db.iter_mut().zip(&row[o0..o1]).for_each(|(s, &v)| *s += v);
                }
                sq += stride_cpu::sum_of_squares(dw_bufs[l].range(o0 * inp, o1 * inp)) + stride_cpu::sum_of_squares(db);
            }
        }
        *squares[part].lock().unwrap_or_else(|p| p.into_inner()) = sq;
    };
    if parts == 1 {
        weight_grads(0);
    } else {
        team.run(&weight_grads);
    }

    let total =
        |parts: &[Mutex<f64>]| -> f64 { parts.iter().map(|v| *v.lock().unwrap_or_else(|p| p.into_inner())).sum() };
    let (loss, grad_sq_norm, correct) = (total(&losses), total(&squares), total(&hits));
    let mut grads = GradStore::default();
    for ((layer, dw), db) in layers.iter().zip(dws).zip(dbs) {
        let (out, inp) = layer.weight.dims2()?;
        grads.insert(layer.weight, Tensor::from_vec(dw, (out, inp), &Device::Cpu)?);
        if let Some(bias) = layer.bias {
            grads.insert(bias, Tensor::from_vec(db, out, &Device::Cpu)?);
        }
    }
    let [gathered, forward_done] = *marks.lock().unwrap_or_else(|p| p.into_inner());
    let (gathered, forward_done) = (gathered.unwrap_or(started), forward_done.unwrap_or(started));
    let times = PhaseTimes {
        data: gathered - started,
        forward: forward_done - gathered,
        backward: forward_done.elapsed(),
    };
    Ok(Some(FusedGrads {
        loss: (loss * f64::from(scale)) as f32,
        correct: correct as u32,
        grads,
        grad_sq_norm,
        times,
    }))
}
