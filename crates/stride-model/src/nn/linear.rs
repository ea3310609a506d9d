//! `linear`: candle-nn's constructor and variables, with a CPU forward and backward of
//! its own that skips the input gradient when the input does not track one (the data
//! batch) and writes each gradient once.

use candle_core::{CpuStorage, Layout, Module, Shape, Tensor};
use candle_nn::VarBuilder;

use super::kernels::{gemm, on_cpu_f32, part, parts_for, run_parts, tensor, weight_op, with_values, Mat, SendPtr};

/// A fully connected layer `y = x W^T + b`, as `candle_nn::Linear`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

/// A linear layer with a bias, named and initialised as `candle_nn::linear` does.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> candle_core::Result<Linear> {
    let l = candle_nn::linear(in_dim, out_dim, vb)?;
    Ok(Linear::new(l.weight().clone(), l.bias().cloned()))
}

/// A linear layer without a bias, as `candle_nn::linear_no_bias`.
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> candle_core::Result<Linear> {
    let l = candle_nn::linear_no_bias(in_dim, out_dim, vb)?;
    Ok(Linear::new(l.weight().clone(), None))
}

impl Linear {
    /// A layer from its weight `(out, in)` and bias `(out,)`.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    /// The weight, `(out, in)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let fast =
            on_cpu_f32(xs) && on_cpu_f32(&self.weight) && self.bias.as_ref().is_none_or(on_cpu_f32) && xs.rank() >= 1;
        if !fast {
            return candle_nn::Linear::new(self.weight.clone(), self.bias.clone()).forward(xs);
        }
        let dims = xs.dims().to_vec();
        let inner = dims[dims.len() - 1];
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let x2 = xs.reshape((rows, inner))?.contiguous()?;
        let w = self.weight.contiguous()?;
        let y = match &self.bias {
            Some(b) => x2.apply_op3(&w, &b.contiguous()?, LinearOp)?,
            None => x2.apply_op2(&w, LinearOp)?,
        };
        let mut out_dims = dims;
        let last = out_dims.len() - 1;
        out_dims[last] = y.dim(1)?;
        y.reshape(out_dims)
    }
}

struct LinearOp;

impl LinearOp {
    fn forward(
        &self,
        x: &[f32],
        xl: &Layout,
        w: &[f32],
        wl: &Layout,
        bias: Option<&[f32]>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (&[n, inp], &[out, win]) = (xl.dims(), wl.dims()) else {
            return Err(candle_core::Error::Msg(format!(
                "linear: expected a 2-d input and weight, got {:?} and {:?}",
                xl.dims(),
                wl.dims()
            )));
        };
        if inp != win || bias.is_some_and(|b| b.len() != out) {
            return Err(candle_core::Error::Msg(format!(
                "linear: an input of width {inp} does not fit a weight of shape {:?}",
                wl.dims()
            )));
        }
        let mut y = vec![0.0f32; n * out];
        let parts = parts_for(n * out * inp, n);
        let yp = SendPtr(y.as_mut_ptr());
        run_parts(parts, &|t| {
            let (r0, r1) = part(t, parts, n);
            // SAFETY: rows r0..r1 of y are this part's; x is n x inp, w out x inp (read transposed).
            unsafe {
                gemm(
                    r1 - r0,
                    out,
                    inp,
                    (yp.get().add(r0 * out), out),
                    false,
                    Mat::rows(&x[r0 * inp..], inp),
                    Mat::rows_t(w, inp),
                );
                if let Some(b) = bias {
                    let rows = yp.range(r0 * out, (r1 - r0) * out);
                    for row in rows.chunks_exact_mut(out) {
                        row.iter_mut().zip(b).for_each(|(v, &bv)| *v += bv);
                    }
                }
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((n, out))))
    }

    #[allow(clippy::type_complexity)]
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
        (want_x, want_w, want_b): (bool, bool, bool),
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, inp) = x.dims2()?;
        let (out, _) = w.dims2()?;
        with_values("linear backward", grad, |g| {
            with_values("linear backward", w, |wv| {
                with_values("linear backward", x, |xv| {
                    let mut dw = vec![0.0f32; if want_w { out * inp } else { 0 }];
                    let mut dx = vec![0.0f32; if want_x { n * inp } else { 0 }];
                    let (dwp, dxp) = (SendPtr(dw.as_mut_ptr()), SendPtr(dx.as_mut_ptr()));
                    let parts = parts_for(n * out * inp, out.max(n));
                    run_parts(parts, &|t| {
                        if want_w {
                            let (o0, o1) = part(t, parts, out);
                            // SAFETY: rows o0..o1 of dw are this part's; dy^T rows o0.. start at column o0 of dy.
                            unsafe {
                                let dyt = Mat {
                                    ptr: g.as_ptr().add(o0),
                                    rs: 1,
                                    cs: out as isize,
                                };
                                gemm(
                                    o1 - o0,
                                    inp,
                                    n,
                                    (dwp.get().add(o0 * inp), inp),
                                    false,
                                    dyt,
                                    Mat::rows(xv, inp),
                                );
                            }
                        }
                        if want_x {
                            let (r0, r1) = part(t, parts, n);
                            // SAFETY: rows r0..r1 of dx are this part's; dy is n x out, w out x inp.
                            unsafe {
                                gemm(
                                    r1 - r0,
                                    inp,
                                    out,
                                    (dxp.get().add(r0 * inp), inp),
                                    false,
                                    Mat::rows(&g[r0 * out..], out),
                                    Mat::rows(wv, inp),
                                );
                            }
                        }
                    });
                    let db = want_b.then(|| {
                        let mut db = vec![0.0f32; out];
                        for row in g.chunks_exact(out) {
                            db.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
                        }
                        db
                    });
                    Ok((
                        want_x.then(|| tensor(dx, (n, inp))).transpose()?,
                        want_w.then(|| tensor(dw, (out, inp))).transpose()?,
                        db.map(|d| tensor(d, out)).transpose()?,
                    ))
                })
            })
        })
    }
}

weight_op!(LinearOp, "linear");
