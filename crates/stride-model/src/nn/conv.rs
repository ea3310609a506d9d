//! `conv2d`: candle-nn's constructor and variables, with a CPU forward and backward of
//! its own (im2col + GEMM per image, split over the team by image).
//!
//! candle's own backward computes the gradient of the data batch too and forms the
//! input gradient through `conv_transpose2d`; here the input gradient is computed only
//! when the input tracks one (a layer above the first), and the im2col columns of the
//! forward pass are kept for the weight gradient instead of being built again.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, Layout, Module, Shape, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};

use super::kernels::{gemm, on_cpu_f32, part, parts_for, run_parts, tensor, weight_op, with_values, Mat, SendPtr};

/// A 2-D convolution over `(batch, channels, height, width)` inputs, as `candle_nn::Conv2d`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    config: Conv2dConfig,
    spare: Spare,
}

/// The column buffer of the last backward pass, reused by the next forward: a batch's
/// columns are megabytes, and fresh pages for them every step cost more than the copy.
#[derive(Clone, Default)]
struct Spare(Arc<Mutex<Vec<f32>>>);

impl std::fmt::Debug for Spare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spare")
    }
}

impl Spare {
    fn take(&self) -> Vec<f32> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn give(&self, buffer: Vec<f32>) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if buffer.capacity() > slot.capacity() {
            *slot = buffer;
        }
    }
}

/// A convolution with a bias, named and initialised as `candle_nn::conv2d` does
/// (`weight` of shape `(out, in / groups, k, k)`, `bias` of `out`).
pub fn conv2d(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    config: Conv2dConfig,
    vb: VarBuilder,
) -> candle_core::Result<Conv2d> {
    let c = candle_nn::conv2d(in_channels, out_channels, kernel, config, vb)?;
    Ok(Conv2d::new(c.weight().clone(), c.bias().cloned(), config))
}

/// A convolution without a bias, as `candle_nn::conv2d_no_bias`.
pub fn conv2d_no_bias(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    config: Conv2dConfig,
    vb: VarBuilder,
) -> candle_core::Result<Conv2d> {
    let c = candle_nn::conv2d_no_bias(in_channels, out_channels, kernel, config, vb)?;
    Ok(Conv2d::new(c.weight().clone(), None, config))
}

impl Conv2d {
    /// A convolution from its tensors.
    pub fn new(weight: Tensor, bias: Option<Tensor>, config: Conv2dConfig) -> Self {
        Self {
            weight,
            bias,
            config,
            spare: Spare::default(),
        }
    }

    /// The kernel, `(out, in / groups, kh, kw)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, `(out,)`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Padding, stride, dilation and groups.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    /// Whether this call can take the CPU kernels (grouped and dilated convolutions, other
    /// devices and dtypes compose candle's ops instead).
    fn fast(&self, xs: &Tensor) -> bool {
        self.config.groups == 1
            && self.config.dilation == 1
            && self.config.stride > 0
            && xs.rank() == 4
            && on_cpu_f32(xs)
            && on_cpu_f32(&self.weight)
            && self.bias.as_ref().is_none_or(on_cpu_f32)
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(xs, false, None)
    }
}

impl Conv2d {
    /// `relu(self.forward(xs))` in one op: on the CPU the ReLU is applied as the outputs are
    /// written and its derivative folded into the backward pass, which saves a pass over
    /// the activations each way and a gradient buffer. The derivative is PyTorch's
    /// (the gradient passes where the output is > 0).
    pub fn forward_relu(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(xs, true, None)
    }

    /// `max_pool2d(relu(self.forward(xs)), k)` in one op: on the CPU each image's
    /// convolution output is pooled while it is in cache and never becomes a tensor, so
    /// its gradient is not formed either (zeroed, added into and read back by candle's
    /// backward). Same values and gradients as the three layers in a row.
    pub fn forward_relu_max_pool(&self, xs: &Tensor, k: usize) -> candle_core::Result<Tensor> {
        self.apply(xs, true, Some(k))
    }

    fn apply(&self, xs: &Tensor, relu: bool, pool: Option<usize>) -> candle_core::Result<Tensor> {
        if !self.fast(xs) {
            let out = candle_nn::Conv2d::new(self.weight.clone(), self.bias.clone(), self.config).forward(xs)?;
            let out = if relu { out.relu()? } else { out };
            return match pool {
                Some(k) => super::pool::max_pool2d_composed(&out, k, k),
                None => Ok(out),
            };
        }
        let xs = xs.contiguous()?;
        let op = Conv2dOp {
            relu,
            pool,
            argmax: Mutex::new(None),
            stride: self.config.stride,
            pad: self.config.padding,
            cols: Mutex::new(None),
            spare: self.spare.clone(),
        };
        match &self.bias {
            Some(b) => xs.apply_op3(&self.weight.contiguous()?, &b.contiguous()?, op),
            None => xs.apply_op2(&self.weight.contiguous()?, op),
        }
    }
}

/// Sizes of one convolution call.
#[derive(Debug, Clone, Copy)]
struct Geom {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    ho: usize,
    wo: usize,
}

impl Geom {
    fn new(x: &[usize], w: &[usize], stride: usize, pad: usize) -> candle_core::Result<Self> {
        let (&[n, cin, h, wd], &[cout, wcin, kh, kw]) = (x, w) else {
            return Err(candle_core::Error::Msg(format!(
                "conv2d: expected a (batch, channels, height, width) input and a 4-d kernel, got {x:?} and {w:?}"
            )));
        };
        if cin != wcin {
            return Err(candle_core::Error::Msg(format!(
                "conv2d: the input has {cin} channels, the kernel {w:?} expects {wcin}"
            )));
        }
        let (hp, wp) = (h + 2 * pad, wd + 2 * pad);
        if hp < kh || wp < kw || stride == 0 {
            return Err(candle_core::Error::Msg(format!(
                "conv2d: a {kh}x{kw} kernel does not fit a {h}x{wd} input with padding {pad}"
            )));
        }
        Ok(Self {
            n,
            cin,
            h,
            w: wd,
            cout,
            kh,
            kw,
            stride,
            pad,
            ho: (hp - kh) / stride + 1,
            wo: (wp - kw) / stride + 1,
        })
    }

    /// Rows of an image's column matrix: one per (input channel, ky, kx).
    fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    /// Output pixels per channel.
    fn p(&self) -> usize {
        self.ho * self.wo
    }

    fn image(&self) -> usize {
        self.cin * self.h * self.w
    }

    /// The output columns `ox` whose input column `ox * stride + kx - pad` lies inside the image.
    fn valid_cols(&self, kx: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(kx).div_ceil(self.stride);
        let hi = if self.w + self.pad > kx {
            ((self.w + self.pad - kx - 1) / self.stride + 1).min(self.wo)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Columns of one image: `col[(ci, ky, kx)][(oy, ox)] = x[ci][oy s + ky - pad][ox s + kx - pad]`.
    fn im2col(&self, x: &[f32], col: &mut [f32]) {
        let (p, s) = (self.p(), self.stride);
        if s == 1 && self.pad == 0 {
            // Every window lies inside the image: straight copies, no bounds to look at.
            let (hw, wo) = (self.h * self.w, self.wo);
            for (row, dst) in col.chunks_exact_mut(p).take(self.k()).enumerate() {
                let (ci, ky, kx) = (row / (self.kh * self.kw), row / self.kw % self.kh, row % self.kw);
                let plane = &x[ci * hw..(ci + 1) * hw];
                for (oy, out) in dst.chunks_exact_mut(wo).enumerate() {
                    let at = (oy + ky) * self.w + kx;
                    copy_short(out, &plane[at..at + wo]);
                }
            }
            return;
        }
        for ci in 0..self.cin {
            let plane = &x[ci * self.h * self.w..(ci + 1) * self.h * self.w];
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = (ci * self.kh + ky) * self.kw + kx;
                    let dst = &mut col[row * p..(row + 1) * p];
                    let (lo, hi) = self.valid_cols(kx);
                    for oy in 0..self.ho {
                        let out = &mut dst[oy * self.wo..(oy + 1) * self.wo];
                        let iy = (oy * s + ky) as isize - self.pad as isize;
                        if iy < 0 || iy as usize >= self.h || lo >= hi {
                            out.fill(0.0);
                            continue;
                        }
                        let src = &plane[iy as usize * self.w..(iy as usize + 1) * self.w];
                        out[..lo].fill(0.0);
                        out[hi..].fill(0.0);
                        let first = lo * s + kx - self.pad;
                        if s == 1 {
                            copy_short(&mut out[lo..hi], &src[first..first + (hi - lo)]);
                        } else {
                            for (j, o) in out[lo..hi].iter_mut().enumerate() {
                                *o = src[first + j * s];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds the columns of one image back into its input gradient (im2col's adjoint).
    fn col2im(&self, col: &[f32], dx: &mut [f32]) {
        let (p, s) = (self.p(), self.stride);
        if s == 1 && self.pad == 0 {
            let (hw, wo) = (self.h * self.w, self.wo);
            for (row, src) in col.chunks_exact(p).take(self.k()).enumerate() {
                let (ci, ky, kx) = (row / (self.kh * self.kw), row / self.kw % self.kh, row % self.kw);
                let plane = &mut dx[ci * hw..(ci + 1) * hw];
                for (oy, g) in src.chunks_exact(wo).enumerate() {
                    let at = (oy + ky) * self.w + kx;
                    plane[at..at + wo].iter_mut().zip(g).for_each(|(d, &v)| *d += v);
                }
            }
            return;
        }
        for ci in 0..self.cin {
            let plane = &mut dx[ci * self.h * self.w..(ci + 1) * self.h * self.w];
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = (ci * self.kh + ky) * self.kw + kx;
                    let src = &col[row * p..(row + 1) * p];
                    let (lo, hi) = self.valid_cols(kx);
                    if lo >= hi {
                        continue;
                    }
                    for oy in 0..self.ho {
                        let iy = (oy * s + ky) as isize - self.pad as isize;
                        if iy < 0 || iy as usize >= self.h {
                            continue;
                        }
                        let dst = &mut plane[iy as usize * self.w..(iy as usize + 1) * self.w];
                        let g = &src[oy * self.wo + lo..oy * self.wo + hi];
                        let first = lo * s + kx - self.pad;
                        if s == 1 {
                            dst[first..first + g.len()]
                                .iter_mut()
                                .zip(g)
                                .for_each(|(d, &v)| *d += v);
                        } else {
                            for (j, &v) in g.iter().enumerate() {
                                dst[first + j * s] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short runs of im2col (a row of a small feature map):
/// a `memcpy` call per 8 values was a third of a small convolution's forward pass.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (dc, sc) in (&mut d).zip(&mut s) {
        if let (Ok(dc), Ok(sc)) = (<&mut [f32; 8]>::try_from(dc), <&[f32; 8]>::try_from(sc)) {
            *dc = *sc;
        }
    }
    for (x, &y) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *x = y;
    }
}

/// Above this many column values a batch's columns are built again for the backward pass
/// instead of kept (a large evaluation batch would otherwise hold hundreds of MB).
const KEEP_COLS_MAX: usize = 32 << 20;

/// The convolution as a candle custom op over (input, kernel[, bias]).
struct Conv2dOp {
    /// Whether a ReLU follows, fused.
    relu: bool,
    /// A max pool over k x k windows after the ReLU, fused.
    pool: Option<usize>,
    /// With the pool: per pooled output, the index in its convolution-output plane of the
    /// window's maximum.
    argmax: Mutex<Option<Vec<u32>>>,
    stride: usize,
    pad: usize,
    /// The forward pass's im2col columns, all images, for the weight gradient.
    cols: Mutex<Option<Vec<f32>>>,
    /// Where the columns go when this op is done with them.
    spare: Spare,
}

impl Drop for Conv2dOp {
    fn drop(&mut self) {
        if let Some(cols) = self.cols.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            self.spare.give(cols);
        }
    }
}

impl Conv2dOp {
    fn forward(
        &self,
        x: &[f32],
        xl: &Layout,
        w: &[f32],
        wl: &Layout,
        bias: Option<&[f32]>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = Geom::new(xl.dims(), wl.dims(), self.stride, self.pad)?;
        if bias.is_some_and(|b| b.len() != g.cout) {
            return Err(candle_core::Error::Msg(format!(
                "conv2d: the bias does not have {} values",
                g.cout
            )));
        }
        let (k, p) = (g.k(), g.p());
        let keep = g.n * k * p <= KEEP_COLS_MAX;
        let mut cols = if keep { self.spare.take() } else { Vec::new() };
        // Every value is written by im2col below; reused buffers need no zeroing.
        cols.resize(if keep { g.n * k * p } else { 0 }, 0.0);
        let (ho2, wo2) = self.pooled(&g)?;
        let q = ho2 * wo2;
        let mut out = vec![0.0f32; g.n * g.cout * q];
        let mut arg = vec![0u32; if self.pool.is_some() { out.len() } else { 0 }];
        let parts = parts_for(g.n * g.cout * k * p, g.n);
        let (out_ptr, cols_ptr, arg_ptr) = (
            SendPtr(out.as_mut_ptr()),
            SendPtr(cols.as_mut_ptr()),
            SendPtr(arg.as_mut_ptr()),
        );
        run_parts(parts, &|t| {
            let (b0, b1) = part(t, parts, g.n);
            let mut scratch = if keep { Vec::new() } else { vec![0.0f32; k * p] };
            let mut conv_out = vec![0.0f32; if self.pool.is_some() { g.cout * p } else { 0 }];
            for b in b0..b1 {
                // SAFETY: image b's columns and outputs are written by this part only.
                let col = if keep {
                    unsafe { cols_ptr.range(b * k * p, k * p) }
                } else {
                    &mut scratch[..]
                };
                g.im2col(&x[b * g.image()..(b + 1) * g.image()], col);
                let dst: &mut [f32] = if self.pool.is_some() {
                    &mut conv_out
                } else {
                    unsafe { out_ptr.range(b * g.cout * p, g.cout * p) }
                };
                // SAFETY: w is cout x k, col is k x p, dst cout x p, all in bounds.
                unsafe {
                    gemm(
                        g.cout,
                        p,
                        k,
                        (dst.as_mut_ptr(), p),
                        false,
                        Mat::rows(w, k),
                        Mat::rows(col, p),
                    )
                };
                for (c, row) in dst.chunks_exact_mut(p).enumerate() {
                    let bv = bias.map_or(0.0, |b| b[c]);
                    if self.relu {
                        row.iter_mut().for_each(|v| *v = (*v + bv).max(0.0));
                    } else if bias.is_some() {
                        row.iter_mut().for_each(|v| *v += bv);
                    }
                }
                if let Some(pk) = self.pool {
                    for (c, plane) in conv_out.chunks_exact(p).enumerate() {
                        let at = (b * g.cout + c) * q;
                        // SAFETY: image b's pooled outputs and indices are this part's.
                        let (o, a) = unsafe { (out_ptr.range(at, q), arg_ptr.range(at, q)) };
                        super::pool::max_pool_plane(plane, g.wo, pk, pk, wo2, o, a);
                    }
                }
            }
        });
        if self.pool.is_some() {
            *self.argmax.lock().unwrap_or_else(|e| e.into_inner()) = Some(arg);
        }
        if keep {
            *self.cols.lock().unwrap_or_else(|e| e.into_inner()) = Some(cols);
        }
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.cout, ho2, wo2))))
    }

    /// The output's spatial size: the convolution's, or after the fused pool.
    fn pooled(&self, g: &Geom) -> candle_core::Result<(usize, usize)> {
        match self.pool {
            None => Ok((g.ho, g.wo)),
            Some(k) if k > 0 && g.ho >= k && g.wo >= k => Ok(((g.ho - k) / k + 1, (g.wo - k) / k + 1)),
            Some(k) => Err(candle_core::Error::Msg(format!(
                "max_pool2d: a {k}x{k} window does not fit the {}x{} convolution output",
                g.ho, g.wo
            ))),
        }
    }

    /// Gradients for the input (when `want_x`), the kernel (when `want_w`) and the bias
    /// (when `want_b`).
    #[allow(clippy::type_complexity)]
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        grad: &Tensor,
        (want_x, want_w, want_b): (bool, bool, bool),
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = Geom::new(x.dims(), w.dims(), self.stride, self.pad)?;
        // The fused ReLU's derivative: the gradient passes where the output is positive.
        let masked;
        let grad = if self.relu && self.pool.is_none() {
            masked = with_values("conv2d backward", grad, |gv| {
                with_values("conv2d backward", res, |rv| {
                    let m: Vec<f32> = gv
                        .iter()
                        .zip(rv)
                        .map(|(&d, &r)| if r > 0.0 { d } else { 0.0 })
                        .collect();
                    tensor(m, res.shape())
                })
            })?;
            &masked
        } else {
            grad
        };
        let kept = self.cols.lock().unwrap_or_else(|e| e.into_inner()).take();
        let argmax = self.argmax.lock().unwrap_or_else(|e| e.into_inner()).take();
        let pooled = match (&argmax, self.pool) {
            (Some(a), Some(_)) => Some((a.as_slice(), res)),
            (None, Some(_)) => {
                return Err(candle_core::Error::Msg(
                    "conv2d backward: the fused pool's indices are missing".into(),
                ))
            }
            _ => None,
        };
        let result = self.gradients(&g, x, w, grad, (kept.as_deref(), pooled), (want_x, want_w, want_b));
        if let Some(cols) = kept {
            self.spare.give(cols);
        }
        result
    }

    #[allow(clippy::type_complexity)]
    fn gradients(
        &self,
        g: &Geom,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
        // What the forward pass left: its columns, and with the fused pool its indices and outputs.
        (kept, pooled): (Option<&[f32]>, Option<(&[u32], &Tensor)>),
        (want_x, want_w, want_b): (bool, bool, bool),
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = *g;
        // With the fused pool, the pooled outputs (whose sign is the ReLU's derivative at
        // each window's maximum) and the indices of those maxima.
        let pooled_out = pooled
            .map(|(_, r)| r.flatten_all())
            .transpose()?
            .map(|r| r.to_vec1::<f32>())
            .transpose()?;
        let argmax = pooled.map(|(a, _)| a);
        let (k, p) = (g.k(), g.p());
        with_values("conv2d backward", grad, |gr| {
            with_values("conv2d backward", w, |wv| {
                with_values("conv2d backward", x, |xv| {
                    let parts = parts_for(g.n * g.cout * k * p, g.n);
                    let mut dw = vec![0.0f32; if want_w { parts * g.cout * k } else { 0 }];
                    let mut db = vec![0.0f32; if want_b { parts * g.cout } else { 0 }];
                    let mut dx = vec![0.0f32; if want_x { x.elem_count() } else { 0 }];
                    let (dw_ptr, db_ptr, dx_ptr) = (
                        SendPtr(dw.as_mut_ptr()),
                        SendPtr(db.as_mut_ptr()),
                        SendPtr(dx.as_mut_ptr()),
                    );
                    let kept = kept.filter(|c| c.len() == g.n * k * p);
                    run_parts(parts, &|t| {
                        let (b0, b1) = part(t, parts, g.n);
                        let mut scratch = vec![0.0f32; if want_w && kept.is_none() || want_x { k * p } else { 0 }];
                        let mut spread = vec![0.0f32; if argmax.is_some() { g.cout * p } else { 0 }];
                        for b in b0..b1 {
                            let gb: &[f32] = match (argmax, &pooled_out) {
                                (Some(a), Some(r)) => {
                                    // The pool's and the ReLU's backward: each pooled gradient
                                    // goes to its window's maximum, if that is positive.
                                    spread.fill(0.0);
                                    let q = a.len() / (g.n * g.cout);
                                    for c in 0..g.cout {
                                        let at = (b * g.cout + c) * q;
                                        let plane = &mut spread[c * p..(c + 1) * p];
                                        for j in at..at + q {
                                            if r[j] > 0.0 {
                                                plane[a[j] as usize] += gr[j];
                                            }
                                        }
                                    }
                                    &spread
                                }
                                _ => &gr[b * g.cout * p..(b + 1) * g.cout * p],
                            };
                            if want_w {
                                let col: &[f32] = match kept {
                                    Some(c) => &c[b * k * p..(b + 1) * k * p],
                                    None => {
                                        g.im2col(&xv[b * g.image()..(b + 1) * g.image()], &mut scratch);
                                        &scratch
                                    }
                                };
                                // SAFETY: part t's cout x k block of dw is its own; gb is cout x p, col k x p.
                                unsafe {
                                    gemm(
                                        g.cout,
                                        k,
                                        p,
                                        (dw_ptr.get().add(t * g.cout * k), k),
                                        b > b0,
                                        Mat::rows(gb, p),
                                        Mat::rows_t(col, p),
                                    );
                                }
                            }
                            if want_b {
                                // SAFETY: part t's cout values of db are its own.
                                let dbt = unsafe { db_ptr.range(t * g.cout, g.cout) };
                                for (d, row) in dbt.iter_mut().zip(gb.chunks_exact(p)) {
                                    *d += row.iter().sum::<f32>();
                                }
                            }
                            if want_x {
                                // SAFETY: w is cout x k (read transposed), gb cout x p, scratch k x p.
                                unsafe {
                                    gemm(
                                        k,
                                        p,
                                        g.cout,
                                        (scratch.as_mut_ptr(), p),
                                        false,
                                        Mat::rows_t(wv, k),
                                        Mat::rows(gb, p),
                                    )
                                };
                                // SAFETY: image b's input gradient is written by this part only.
                                let dxb = unsafe { dx_ptr.range(b * g.image(), g.image()) };
                                g.col2im(&scratch, dxb);
                            }
                        }
                    });
                    let reduce = |v: &[f32], len: usize| -> Vec<f32> {
                        let mut acc = v[..len].to_vec();
                        for chunk in v.chunks_exact(len).skip(1) {
                            acc.iter_mut().zip(chunk).for_each(|(a, &c)| *a += c);
                        }
                        acc
                    };
                    let dx = want_x.then(|| tensor(dx, x.shape())).transpose()?;
                    let dw = want_w.then(|| tensor(reduce(&dw, g.cout * k), w.shape())).transpose()?;
                    let db = want_b.then(|| tensor(reduce(&db, g.cout), g.cout)).transpose()?;
                    Ok((dx, dw, db))
                })
            })
        })
    }
}

weight_op!(Conv2dOp, "conv2d");
