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
use crate::team::team;

/// Loss and gradients of one fused training step.
#[derive(Debug)]
pub struct FusedGrads {
    /// Mean cross-entropy over the batch.
    pub loss: f32,
    /// Gradient of the loss for every weight and bias, keyed like candle's autograd.
    pub grads: GradStore,
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
    delta_prev: Vec<f32>,
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

impl View {
    fn rows(self, from: usize) -> Self {
        // SAFETY: callers split within the matrix they were given.
        Self {
            ptr: unsafe { self.ptr.offset(from as isize * self.rs) },
            ..self
        }
    }
}

/// A pointer to the destination, shared by the parts that write disjoint rows of it.
#[derive(Clone, Copy)]
struct Dst(*mut f32);

// SAFETY: every part writes its own rows only, and the team joins before the borrow ends.
unsafe impl Send for Dst {}
unsafe impl Sync for Dst {}

impl Dst {
    /// The pointer `offset` elements in (a method, so closures capture the whole `Dst`).
    ///
    /// # Safety
    /// `offset` must stay inside the destination.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        self.0.add(offset)
    }
}

/// Below this many multiply-adds a product runs on one thread: a fork-join costs more.
const PARALLEL_MIN_MACS: usize = 1 << 20;

/// First row of part `part` of `parts` over `m` rows, in multiples of 8 (the kernels' tiles).
fn part_start(part: usize, parts: usize, m: usize) -> usize {
    if part >= parts {
        m
    } else {
        (m * part / parts) / 8 * 8
    }
}

/// `c[m x n]` (row-major, fully written, never read) `= a[m x k] * b[k x n]`, the rows of
/// `c` split over the team for large products.
///
/// # Safety
/// `a` and `b` must address valid `m x k` and `k x n` matrices; `c.len() >= m * n`.
unsafe fn matmul(c: &mut [f32], m: usize, n: usize, k: usize, a: View, b: View) {
    debug_assert!(c.len() >= m * n);
    let team = team();
    let parts = if m * n * k >= PARALLEL_MIN_MACS {
        team.size().min(m / 8).max(1)
    } else {
        1
    };
    if parts == 1 {
        serial_matmul(c.as_mut_ptr(), m, n, k, a, b);
        return;
    }
    let dst = Dst(c.as_mut_ptr());
    team.run(&|part| {
        let (first, end) = (part_start(part, parts, m), part_start(part + 1, parts, m));
        if first < end {
            // SAFETY: rows first..end of c, a are inside the matrices the caller vouched for.
            unsafe { serial_matmul(dst.at(first * n), end - first, n, k, a.rows(first), b) }
        }
    });
}

/// One thread's `c = a * b`, `c` row-major with `n` columns.
unsafe fn serial_matmul(c: *mut f32, m: usize, n: usize, k: usize, a: View, b: View) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        std::slice::from_raw_parts_mut(c, m * n).fill(0.0);
        return;
    }
    gemm::gemm(
        m,
        n,
        k,
        c,
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

/// Gathers `rows` of the `width`-wide matrix `src` into `dst`, split over the team for large batches.
fn gather(dst: &mut [f32], src: &[f32], rows: &[u32], width: usize) {
    let team = team();
    let parts = if rows.len() * width >= 1 << 16 { team.size() } else { 1 };
    if parts == 1 {
        for (out, &r) in dst.chunks_exact_mut(width).zip(rows) {
            let r = r as usize;
            out.copy_from_slice(&src[r * width..(r + 1) * width]);
        }
        return;
    }
    let out = Dst(dst.as_mut_ptr());
    team.run(&|part| {
        let (first, end) = (rows.len() * part / parts, rows.len() * (part + 1) / parts);
        for (i, &r) in rows.iter().enumerate().take(end).skip(first) {
            let r = r as usize;
            let from = &src[r * width..(r + 1) * width];
            // SAFETY: row i of dst (batch x width) belongs to this part alone.
            unsafe { std::ptr::copy_nonoverlapping(from.as_ptr(), out.at(i * width), width) };
        }
    });
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

/// Adds `bias` to every row of the logits, then forms the mean cross-entropy and,
/// in place, its gradient `(softmax - onehot) / batch`.
fn softmax_cross_entropy(logits: &mut [f32], bias: Option<&[f32]>, labels: &[usize], classes: usize) -> f32 {
    let scale = 1.0 / labels.len() as f32;
    let mut total = 0.0f64;
    for (row, &label) in logits.chunks_exact_mut(classes).zip(labels) {
        if let Some(b) = bias {
            row.iter_mut().zip(b).for_each(|(z, &b)| *z += b);
        }
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        // log p = (z - max) - ln(sum), as candle's log_softmax: finite even when exp(z - max)
        // underflows to 0 (huge logits after a too-large step), where ln(p) would be -inf.
        let shifted = row[label] - max;
        let mut sum = 0.0f32;
        for z in row.iter_mut() {
            *z = (*z - max).exp();
            sum += *z;
        }
        let log_p = shifted - sum.ln();
        total -= f64::from(log_p);
        let inv = scale / sum;
        row.iter_mut().for_each(|p| *p *= inv);
        row[label] -= scale;
    }
    (total * f64::from(scale)) as f32
}

/// Sums the rows of `m` (`width` wide).
fn column_sums(m: &[f32], width: usize) -> Vec<f32> {
    let mut out = vec![0.0; width];
    for row in m.chunks_exact(width) {
        out.iter_mut().zip(row).for_each(|(o, &v)| *o += v);
    }
    out
}

/// A fresh `len`-element buffer that `matmul` fills completely.
fn output(len: usize) -> Vec<f32> {
    vec![0.0; len]
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
    let batch = rows.len();
    let depth = params.len();
    let started = Instant::now();
    ws.x.resize(batch * input, 0.0);
    gather(&mut ws.x, x_all, rows, input);
    let gathered = Instant::now();

    ws.pre.resize_with(depth, Vec::new);
    ws.act.resize_with(depth.saturating_sub(1), Vec::new);
    for (l, &Dense { w, b, out, inp }) in params.iter().enumerate() {
        let mut pre = std::mem::take(&mut ws.pre[l]);
        pre.resize(batch * out, 0.0);
        let a = if l == 0 { &ws.x } else { &ws.act[l - 1] };
        // SAFETY: `a` is batch x inp row-major, `w` is out x inp row-major (read as its transpose).
        unsafe {
            matmul(
                &mut pre,
                batch,
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
        }
        if l + 1 < depth {
            let mut act = std::mem::take(&mut ws.act[l]);
            act.resize(batch * out, 0.0);
            bias_activation(&mut pre, &mut act, b, out, activation);
            ws.act[l] = act;
        }
        ws.pre[l] = pre;
    }
    let mut delta = std::mem::take(&mut ws.pre[depth - 1]);
    let loss = softmax_cross_entropy(&mut delta, params[depth - 1].b, &labels, classes);
    let forward_done = Instant::now();

    let mut grads = GradStore::default();
    let mut delta_prev = std::mem::take(&mut ws.delta_prev);
    for l in (0..depth).rev() {
        let Dense { w, b, out, inp } = params[l];
        let a = if l == 0 { &ws.x } else { &ws.act[l - 1] };
        let mut dw = output(out * inp);
        // SAFETY: delta is batch x out (read as its transpose), `a` is batch x inp.
        unsafe {
            matmul(
                &mut dw,
                out,
                inp,
                batch,
                View {
                    ptr: delta.as_ptr(),
                    rs: 1,
                    cs: out as isize,
                },
                View {
                    ptr: a.as_ptr(),
                    rs: inp as isize,
                    cs: 1,
                },
            );
        }
        grads.insert(layers[l].weight, Tensor::from_vec(dw, (out, inp), &Device::Cpu)?);
        if let (Some(bias), Some(_)) = (layers[l].bias, b) {
            grads.insert(bias, Tensor::from_vec(column_sums(&delta, out), out, &Device::Cpu)?);
        }
        if l == 0 {
            // The gradient of the data batch is what autograd would compute next; nobody reads it.
            break;
        }
        delta_prev.resize(batch * inp, 0.0);
        // SAFETY: delta is batch x out, `w` is out x inp, both row-major.
        unsafe {
            matmul(
                &mut delta_prev,
                batch,
                inp,
                out,
                View {
                    ptr: delta.as_ptr(),
                    rs: out as isize,
                    cs: 1,
                },
                View {
                    ptr: w.as_ptr(),
                    rs: inp as isize,
                    cs: 1,
                },
            );
        }
        activation_grad(&mut delta_prev, &ws.pre[l - 1], &ws.act[l - 1], activation);
        std::mem::swap(&mut delta, &mut delta_prev);
    }
    // Both are scratch from here on; which buffer ends up where does not matter.
    ws.pre[depth - 1] = delta;
    ws.delta_prev = delta_prev;
    let times = PhaseTimes {
        data: gathered - started,
        forward: forward_done - gathered,
        backward: forward_done.elapsed(),
    };
    Ok(Some(FusedGrads { loss, grads, times }))
}
