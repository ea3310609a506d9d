//! Max and average pooling with their own CPU backward: max pooling keeps the index of
//! each window's maximum and sends the gradient there (candle's backward upsamples,
//! compares, average-pools and multiplies instead).

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, Layout, Module, Shape, Tensor};

use super::kernels::{on_cpu_f32, part, parts_for, run_parts, slice, tensor, with_values, SendPtr};

/// Max pooling over `k x k` windows, `stride` apart (`k` when not given), as candle's
/// `Tensor::max_pool2d_with_stride`.
pub fn max_pool2d_with_stride(xs: &Tensor, k: usize, stride: usize) -> candle_core::Result<Tensor> {
    pool(xs, PoolKind::Max, k, stride)
}

/// Max pooling over `k x k` windows that do not overlap.
pub fn max_pool2d(xs: &Tensor, k: usize) -> candle_core::Result<Tensor> {
    max_pool2d_with_stride(xs, k, k)
}

/// Average pooling over `k x k` windows, `stride` apart, as `Tensor::avg_pool2d_with_stride`.
pub fn avg_pool2d_with_stride(xs: &Tensor, k: usize, stride: usize) -> candle_core::Result<Tensor> {
    pool(xs, PoolKind::Avg, k, stride)
}

/// The pooling op on the CPU, candle's own elsewhere.
fn pool(xs: &Tensor, kind: PoolKind, k: usize, stride: usize) -> candle_core::Result<Tensor> {
    if !on_cpu_f32(xs) || xs.rank() != 4 {
        return match kind {
            PoolKind::Max => max_pool2d_composed(xs, k, stride),
            PoolKind::Avg => xs.avg_pool2d_with_stride(k, stride),
        };
    }
    xs.contiguous()?.apply_op1(Pool {
        kind,
        k,
        stride,
        argmax: Mutex::new(None),
    })
}

/// Max pooling from candle's ops with PyTorch's gradient, for devices the CPU op does not
/// serve. candle's own `max_pool2d` has the right values but a gradient (maxima in the
/// window) / k^2 times the true one, so the value is taken from it and the gradient from
/// `sum(x * mask) / count` over each window: the whole gradient to a unique maximum, split
/// evenly over ties (PyTorch gives it to the first; ties are the zeros after a ReLU, whose
/// gradient the ReLU stops either way). Overlapping windows keep candle's op, whose
/// backward refuses them.
pub(crate) fn max_pool2d_composed(xs: &Tensor, k: usize, stride: usize) -> candle_core::Result<Tensor> {
    if k != stride || xs.rank() != 4 {
        return xs.max_pool2d_with_stride(k, stride);
    }
    let (_, _, h, w) = xs.dims4()?;
    let (oh, ow) = (h / k, w / k);
    // Floor mode: rows and columns past the last whole window take no part.
    let xs = xs.narrow(2, 0, oh * k)?.narrow(3, 0, ow * k)?;
    let value = xs.detach().max_pool2d(k)?;
    let mask = xs
        .detach()
        .eq(&value.upsample_nearest2d(oh * k, ow * k)?)?
        .to_dtype(xs.dtype())?;
    let count = (mask.avg_pool2d(k)? * (k * k) as f64)?;
    let routed = ((xs * mask)?.avg_pool2d(k)? * (k * k) as f64)?.div(&count)?;
    // value + (routed - routed): exactly candle's values, the routed gradient.
    value + (&routed - routed.detach())?
}

/// Average pooling over `k x k` windows that do not overlap.
pub fn avg_pool2d(xs: &Tensor, k: usize) -> candle_core::Result<Tensor> {
    avg_pool2d_with_stride(xs, k, k)
}

/// Max pooling as a module, for `Sequential`-style models.
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2d {
    /// Window side.
    pub kernel: usize,
    /// Distance between windows.
    pub stride: usize,
}

impl Module for MaxPool2d {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        max_pool2d_with_stride(xs, self.kernel, self.stride)
    }
}

/// Average pooling as a module.
#[derive(Debug, Clone, Copy)]
pub struct AvgPool2d {
    /// Window side.
    pub kernel: usize,
    /// Distance between windows.
    pub stride: usize,
}

impl Module for AvgPool2d {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        avg_pool2d_with_stride(xs, self.kernel, self.stride)
    }
}

/// The maximum of the `k x k` window at (`y0`, `x0`) and its index, the first one on ties
/// (as PyTorch); NaN when the window holds one, so a blown-up input is not hidden. Written
/// with selects, not branches: on real activations the comparison is a coin flip.
fn window_max(src: &[f32], w: usize, y0: usize, x0: usize, k: usize) -> (f32, u32) {
    let (mut best, mut at, mut nan) = (src[y0 * w + x0], y0 * w + x0, false);
    for yy in y0..y0 + k {
        for (j, &v) in src[yy * w + x0..yy * w + x0 + k].iter().enumerate() {
            let better = v > best;
            best = if better { v } else { best };
            at = if better { yy * w + x0 + j } else { at };
            nan |= v.is_nan();
        }
    }
    (if nan { f32::NAN } else { best }, at as u32)
}

/// Max pooling of one `(h, w)` plane into `dst` (`ho x wo`), with each maximum's index
/// in the plane in `at`.
pub(crate) fn max_pool_plane(src: &[f32], w: usize, k: usize, s: usize, wo: usize, dst: &mut [f32], at: &mut [u32]) {
    if k == 2 && s == 2 {
        max_pool_2x2(src, w, wo, dst, at);
    } else {
        for (i, (d, a)) in dst.iter_mut().zip(at.iter_mut()).enumerate() {
            (*d, *a) = window_max(src, w, (i / wo) * s, (i % wo) * s, k);
        }
    }
}

/// [`window_max`] over the non-overlapping 2 x 2 windows of one plane (the common case),
/// two input rows at a time.
fn max_pool_2x2(src: &[f32], w: usize, wo: usize, dst: &mut [f32], at: &mut [u32]) {
    for (oy, (drow, arow)) in dst.chunks_exact_mut(wo).zip(at.chunks_exact_mut(wo)).enumerate() {
        let top = 2 * oy * w;
        let (r0, r1) = (&src[top..top + 2 * wo], &src[top + w..top + w + 2 * wo]);
        for ox in 0..wo {
            let (a, b, c, d) = (r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]);
            let i = (top + 2 * ox) as u32;
            let (m0, i0) = if b > a { (b, i + 1) } else { (a, i) };
            let (m1, i1) = if d > c {
                (d, i + w as u32 + 1)
            } else {
                (c, i + w as u32)
            };
            let (m, im) = if m1 > m0 { (m1, i1) } else { (m0, i0) };
            drow[ox] = if a.is_nan() | b.is_nan() | c.is_nan() | d.is_nan() {
                f32::NAN
            } else {
                m
            };
            arow[ox] = im;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolKind {
    Max,
    Avg,
}

struct Pool {
    kind: PoolKind,
    k: usize,
    stride: usize,
    /// For max pooling, the index in its input plane of each output's maximum.
    argmax: Mutex<Option<Vec<u32>>>,
}

/// (planes, h, w, ho, wo) of a pooling call.
fn dims(op: &Pool, d: &[usize]) -> candle_core::Result<(usize, usize, usize, usize, usize)> {
    let &[n, c, h, w] = d else {
        return Err(candle_core::Error::Msg(format!(
            "pool2d: expected a 4-d input, got {d:?}"
        )));
    };
    if op.k == 0 || op.stride == 0 || h < op.k || w < op.k {
        return Err(candle_core::Error::Msg(format!(
            "pool2d: a {k}x{k} window with stride {s} does not fit a {h}x{w} input",
            k = op.k,
            s = op.stride
        )));
    }
    Ok((n * c, h, w, (h - op.k) / op.stride + 1, (w - op.k) / op.stride + 1))
}

impl CustomOp1 for Pool {
    fn name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "stride-max-pool2d",
            PoolKind::Avg => "stride-avg-pool2d",
        }
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice("pool2d", storage, layout)?;
        let (planes, h, w, ho, wo) = dims(self, layout.dims())?;
        let (k, s) = (self.k, self.stride);
        let mut out = vec![0.0f32; planes * ho * wo];
        let max = self.kind == PoolKind::Max;
        let mut arg = vec![0u32; if max { out.len() } else { 0 }];
        let parts = parts_for(out.len() * k * k * 4, planes);
        let (out_ptr, arg_ptr) = (SendPtr(out.as_mut_ptr()), SendPtr(arg.as_mut_ptr()));
        let scale = 1.0 / (k * k) as f32;
        run_parts(parts, &|t| {
            let (p0, p1) = part(t, parts, planes);
            for pl in p0..p1 {
                let src = &x[pl * h * w..(pl + 1) * h * w];
                // SAFETY: plane pl's outputs (and indices) are written by this part only.
                let dst = unsafe { out_ptr.range(pl * ho * wo, ho * wo) };
                if max {
                    let at = unsafe { arg_ptr.range(pl * ho * wo, ho * wo) };
                    max_pool_plane(src, w, k, s, wo, dst, at);
                } else {
                    for (i, d) in dst.iter_mut().enumerate() {
                        let (y0, x0) = ((i / wo) * s, (i % wo) * s);
                        let sum: f32 = (y0..y0 + k)
                            .map(|yy| src[yy * w + x0..yy * w + x0 + k].iter().sum::<f32>())
                            .sum();
                        *d = sum * scale;
                    }
                }
            }
        });
        if max {
            *self.argmax.lock().unwrap_or_else(|e| e.into_inner()) = Some(arg);
        }
        let d = layout.dims();
        Ok((CpuStorage::F32(out), Shape::from((d[0], d[1], ho, wo))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        if !arg.track_op() {
            return Ok(None);
        }
        let (planes, h, w, ho, wo) = dims(self, arg.dims())?;
        let (k, s) = (self.k, self.stride);
        let argmax = self.argmax.lock().unwrap_or_else(|e| e.into_inner()).take();
        if self.kind == PoolKind::Max && argmax.as_ref().is_none_or(|a| a.len() != planes * ho * wo) {
            return Err(candle_core::Error::Msg(
                "max_pool2d backward: the forward pass's indices are missing".into(),
            ));
        }
        with_values("pool2d backward", grad, |g| {
            let mut dx = vec![0.0f32; planes * h * w];
            let scale = 1.0 / (k * k) as f32;
            let dx_ptr = SendPtr(dx.as_mut_ptr());
            let parts = parts_for(planes * h * w * 4, planes);
            run_parts(parts, &|t| {
                let (p0, p1) = part(t, parts, planes);
                for pl in p0..p1 {
                    // SAFETY: plane pl's gradient is written by this part only.
                    let dst = unsafe { dx_ptr.range(pl * h * w, h * w) };
                    let gp = &g[pl * ho * wo..(pl + 1) * ho * wo];
                    match &argmax {
                        Some(a) => {
                            for (&gv, &at) in gp.iter().zip(&a[pl * ho * wo..(pl + 1) * ho * wo]) {
                                dst[at as usize] += gv;
                            }
                        }
                        None => {
                            for oy in 0..ho {
                                for ox in 0..wo {
                                    let gv = gp[oy * wo + ox] * scale;
                                    for yy in oy * s..oy * s + k {
                                        dst[yy * w + ox * s..yy * w + ox * s + k]
                                            .iter_mut()
                                            .for_each(|d| *d += gv);
                                    }
                                }
                            }
                        }
                    }
                }
            });
            Ok(Some(tensor(dx, arg.shape())?))
        })
    }
}
