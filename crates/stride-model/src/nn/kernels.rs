//! CPU plumbing shared by the layers' custom ops: f32 views of candle storage,
//! a strided GEMM on the kernels candle itself uses, and splitting work over the team.

use std::ops::Deref;

use candle_core::{CpuStorage, Device, Layout, Shape, Storage, Tensor};
use gemm::Parallelism;

/// Whether `t` can take a layer's CPU kernels: f32 on the CPU.
pub(crate) fn on_cpu_f32(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == candle_core::DType::F32
}

/// The f32 elements of a contiguous CPU storage, or an error naming the op.
pub(crate) fn slice<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => v
            .get(a..b)
            .ok_or_else(|| candle_core::Error::Msg(format!("{op}: storage shorter than its layout"))),
        (CpuStorage::F32(_), None) => Err(candle_core::Error::Msg(format!("{op}: expected a contiguous tensor"))),
        (_, _) => Err(candle_core::Error::Msg(format!("{op}: expected f32 values"))),
    }
}

/// Runs `f` on the f32 values of `t` (made contiguous first), on the CPU.
pub(crate) fn with_values<R>(
    op: &str,
    t: &Tensor,
    f: impl FnOnce(&[f32]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (guard, layout) = t.storage_and_layout();
    match guard.deref() {
        Storage::Cpu(s) => f(slice(op, s, layout)?),
        _ => Err(candle_core::Error::Msg(format!("{op}: expected a CPU tensor"))),
    }
}

/// A CPU f32 tensor of `shape` holding `values`.
pub(crate) fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> candle_core::Result<Tensor> {
    Tensor::from_vec(values, shape, &Device::Cpu)
}

/// A read-only strided matrix: element (i, j) at `ptr + i * rs + j * cs`.
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

impl Mat {
    /// The row-major matrix with `cols` columns starting at `data`.
    pub fn rows(data: &[f32], cols: usize) -> Self {
        Self {
            ptr: data.as_ptr(),
            rs: cols as isize,
            cs: 1,
        }
    }

    /// The transpose of the row-major matrix with `cols` columns starting at `data`.
    pub fn rows_t(data: &[f32], cols: usize) -> Self {
        Self {
            ptr: data.as_ptr(),
            rs: 1,
            cs: cols as isize,
        }
    }
}

/// `dst[m x n]` (row-major, row stride `dst_rs`) `= a * b`, or `+= a * b` when `accumulate`,
/// on the calling thread.
///
/// # Safety
/// `a` must address a valid `m x k` matrix, `b` a valid `k x n` one, and `dst` must hold
/// `m` rows of `dst_rs` elements (the last one `n`) that nothing else touches meanwhile.
pub(crate) unsafe fn gemm(
    m: usize,
    n: usize,
    k: usize,
    (dst, dst_rs): (*mut f32, usize),
    accumulate: bool,
    a: Mat,
    b: Mat,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                std::slice::from_raw_parts_mut(dst.add(i * dst_rs), n).fill(0.0);
            }
        }
        return;
    }
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        a.ptr,
        a.cs,
        a.rs,
        b.ptr,
        b.cs,
        b.rs,
        1.0,
        1.0,
        false,
        false,
        false,
        Parallelism::None,
    );
}

/// `[start, end)` of part `part` of `parts` over `n` items.
pub(crate) fn part(part: usize, parts: usize, n: usize) -> (usize, usize) {
    (n * part / parts, n * (part + 1) / parts)
}

/// How many threads to give `work` multiply-adds over `items` independent items: below
/// ~1M the fork-join costs more than it saves.
pub(crate) fn parts_for(work: usize, items: usize) -> usize {
    if work < (1 << 20) {
        1
    } else {
        rayon::current_num_threads().min(items).max(1)
    }
}

/// Runs `f(part)` for `part in 0..parts` on rayon's pool, the one candle's own CPU ops use.
///
/// Not on the fused MLP's spinning team: a layer's kernels take milliseconds, so waking a
/// parked rayon worker costs little, and one pool for candle's ops and ours keeps the
/// thread count at the cores' (on the CNN workload both measured the same: 3.87 vs
/// 3.84 s per epoch on 2 cores).
pub(crate) fn run_parts(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    if parts <= 1 {
        f(0);
        return;
    }
    use rayon::prelude::*;
    (0..parts).into_par_iter().for_each(f);
}

/// A raw pointer that may be sent into a parallel job; each part writes a disjoint range.
pub(crate) struct SendPtr<T = f32>(pub *mut T);

impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole wrapper, not its field).
    pub fn get(self) -> *mut T {
        self.0
    }

    /// Elements `start..start + len`, mutably.
    ///
    /// # Safety
    /// The range must lie inside the buffer, which must outlive the borrow, and no other
    /// live reference may overlap it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn range<'a>(self, start: usize, len: usize) -> &'a mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

// SAFETY: only used to hand disjoint ranges of a buffer that outlives the job to its parts.
unsafe impl<T: Send> Send for SendPtr<T> {}
unsafe impl<T: Send> Sync for SendPtr<T> {}

/// Implements candle's `CustomOp2` (input, weight) and `CustomOp3` (input, weight, bias)
/// for a layer op with
/// `fn forward(&self, x: &[f32], xl: &Layout, w: &[f32], wl: &Layout, bias: Option<&[f32]>)`
/// and `fn backward(&self, x, w, res, grad, (want_x, want_w, want_b))`: the layers with
/// and without a bias are one op.
macro_rules! weight_op {
    ($op:ty, $name:literal) => {
        impl candle_core::CustomOp2 for $op {
            fn name(&self) -> &'static str {
                concat!("stride-", $name)
            }

            fn cpu_fwd(
                &self,
                s1: &candle_core::CpuStorage,
                l1: &candle_core::Layout,
                s2: &candle_core::CpuStorage,
                l2: &candle_core::Layout,
            ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
                use $crate::nn::kernels::slice;
                self.forward(slice($name, s1, l1)?, l1, slice($name, s2, l2)?, l2, None)
            }

            fn bwd(
                &self,
                x: &candle_core::Tensor,
                w: &candle_core::Tensor,
                res: &candle_core::Tensor,
                grad: &candle_core::Tensor,
            ) -> candle_core::Result<(Option<candle_core::Tensor>, Option<candle_core::Tensor>)> {
                let (dx, dw, _) = self.backward(x, w, res, grad, (x.track_op(), w.track_op(), false))?;
                Ok((dx, dw))
            }
        }

        impl candle_core::CustomOp3 for $op {
            fn name(&self) -> &'static str {
                concat!("stride-", $name)
            }

            fn cpu_fwd(
                &self,
                s1: &candle_core::CpuStorage,
                l1: &candle_core::Layout,
                s2: &candle_core::CpuStorage,
                l2: &candle_core::Layout,
                s3: &candle_core::CpuStorage,
                l3: &candle_core::Layout,
            ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
                use $crate::nn::kernels::slice;
                let bias = slice($name, s3, l3)?;
                self.forward(slice($name, s1, l1)?, l1, slice($name, s2, l2)?, l2, Some(bias))
            }

            #[allow(clippy::type_complexity)]
            fn bwd(
                &self,
                x: &candle_core::Tensor,
                w: &candle_core::Tensor,
                b: &candle_core::Tensor,
                res: &candle_core::Tensor,
                grad: &candle_core::Tensor,
            ) -> candle_core::Result<(
                Option<candle_core::Tensor>,
                Option<candle_core::Tensor>,
                Option<candle_core::Tensor>,
            )> {
                self.backward(x, w, res, grad, (x.track_op(), w.track_op(), b.track_op()))
            }
        }
    };
}
pub(crate) use weight_op;
