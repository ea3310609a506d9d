//! Stride's layers against candle-nn and candle's autograd: forward values and every
//! gradient, on random inputs of odd shapes (batch 1, padding, stride 2, non-square).

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{Conv2dConfig, VarBuilder, VarMap};
use stride_model::nn;

/// Values in [-1, 1) from a fixed linear congruential stream (no ties in practice).
fn random(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// ||a - b|| / ||b||.
fn rel(a: &Tensor, b: &Tensor) -> f32 {
    let d = (a - b)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .sqrt();
    let n = b.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap().sqrt();
    d / n.max(1e-12)
}

/// A scalar loss that weighs every output differently, so every gradient entry matters.
fn weighted_sum(out: &Tensor, seed: u64) -> Tensor {
    (out * random(out.dims(), seed)).unwrap().sum_all().unwrap()
}

fn check(what: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let e = rel(a, b);
    assert!(e <= 1e-5, "{what}: relative error {e:e}");
}

#[allow(clippy::too_many_arguments)] // one argument per dimension of the case
fn conv_case(
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    padding: usize,
    stride: usize,
    bias: bool,
) {
    let case = format!("conv n{n} cin{cin} {h}x{w} cout{cout} k{k} pad{padding} stride{stride} bias{bias}");
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let cfg = Conv2dConfig {
        padding,
        stride,
        ..Default::default()
    };
    let ours = if bias {
        nn::conv2d(cin, cout, k, cfg, vb.pp("c")).unwrap()
    } else {
        nn::conv2d_no_bias(cin, cout, k, cfg, vb.pp("c")).unwrap()
    };
    let theirs = candle_nn::Conv2d::new(ours.weight().clone(), ours.bias().cloned(), cfg);
    let x = Var::from_tensor(&random(&[n, cin, h, w], 7)).unwrap();
    let (a, b) = (ours.forward(&x).unwrap(), theirs.forward(&x).unwrap());
    check(&format!("{case}: forward"), &a, &b);
    let ga = weighted_sum(&a, 3).backward().unwrap();
    // candle's own input gradient has the wrong shape when the stride does not divide the
    // padded size minus the kernel (its conv_transpose2d has no output padding), and its
    // backward fails even for an input that tracks nothing (it always forms that
    // gradient): the PyTorch fixture checks those cases.
    if (h + 2 * padding - k) % stride != 0 || (w + 2 * padding - k) % stride != 0 {
        return;
    }
    let gb = weighted_sum(&b, 3).backward().unwrap();
    check(&format!("{case}: input grad"), ga.get(&x).unwrap(), gb.get(&x).unwrap());
    check(
        &format!("{case}: weight grad"),
        ga.get(ours.weight()).unwrap(),
        gb.get(ours.weight()).unwrap(),
    );
    if let Some(bt) = ours.bias() {
        check(&format!("{case}: bias grad"), ga.get(bt).unwrap(), gb.get(bt).unwrap());
    }
    // The fused ReLU: the same values and gradients as a ReLU after the convolution.
    let (a, b) = (
        ours.forward_relu(&x).unwrap(),
        theirs.forward(&x).unwrap().relu().unwrap(),
    );
    check(&format!("{case}: forward_relu"), &a, &b);
    let ga = weighted_sum(&a, 9).backward().unwrap();
    let gr = weighted_sum(&b, 9).backward().unwrap();
    check(
        &format!("{case}: forward_relu input grad"),
        ga.get(&x).unwrap(),
        gr.get(&x).unwrap(),
    );
    check(
        &format!("{case}: forward_relu weight grad"),
        ga.get(ours.weight()).unwrap(),
        gr.get(ours.weight()).unwrap(),
    );
    // The fused block: the same as conv, ReLU and max pool in a row (Stride's pool: candle's
    // max-pool gradient is off by k^2).
    if (h + 2 * padding - k) / stride + 1 >= 2 && (w + 2 * padding - k) / stride + 1 >= 2 {
        let a = ours.forward_relu_max_pool(&x, 2).unwrap();
        let b = nn::max_pool2d(&theirs.forward(&x).unwrap().relu().unwrap(), 2).unwrap();
        check(&format!("{case}: forward_relu_max_pool"), &a, &b);
        let ga = weighted_sum(&a, 21).backward().unwrap();
        let gp = weighted_sum(&b, 21).backward().unwrap();
        check(
            &format!("{case}: fused block input grad"),
            ga.get(&x).unwrap(),
            gp.get(&x).unwrap(),
        );
        check(
            &format!("{case}: fused block weight grad"),
            ga.get(ours.weight()).unwrap(),
            gp.get(ours.weight()).unwrap(),
        );
        if let Some(bt) = ours.bias() {
            check(
                &format!("{case}: fused block bias grad"),
                ga.get(bt).unwrap(),
                gp.get(bt).unwrap(),
            );
        }
    }
    // The data batch tracks no gradient: none is formed, and the weights' are the same.
    let data = random(&[n, cin, h, w], 7);
    let gd = weighted_sum(&ours.forward(&data).unwrap(), 3).backward().unwrap();
    assert!(gd.get(&data).is_none(), "{case}: a gradient for the data batch");
    check(
        &format!("{case}: weight grad, data input"),
        gd.get(ours.weight()).unwrap(),
        gb.get(ours.weight()).unwrap(),
    );
}

#[test]
fn conv2d_matches_candle() {
    conv_case(4, 1, 28, 28, 8, 5, 0, 1, true);
    conv_case(1, 3, 7, 9, 4, 3, 1, 2, true);
    conv_case(3, 8, 12, 10, 16, 5, 2, 1, false);
    conv_case(2, 2, 6, 11, 3, 3, 0, 2, true);
    conv_case(5, 4, 5, 5, 2, 1, 0, 1, true);
    conv_case(3, 3, 20, 22, 4, 3, 0, 1, true);
    conv_case(2, 3, 9, 4, 5, 4, 3, 3, true);
}

#[test]
fn conv2d_falls_back_for_groups() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let cfg = Conv2dConfig {
        groups: 2,
        ..Default::default()
    };
    let ours = nn::conv2d(4, 6, 3, cfg, vb.pp("g")).unwrap();
    let theirs = candle_nn::Conv2d::new(ours.weight().clone(), ours.bias().cloned(), cfg);
    let x = random(&[2, 4, 8, 8], 1);
    check("grouped conv", &ours.forward(&x).unwrap(), &theirs.forward(&x).unwrap());
}

fn pool_case(max: bool, n: usize, c: usize, h: usize, w: usize, k: usize, stride: usize) {
    let case = format!(
        "{} pool n{n} c{c} {h}x{w} k{k} stride{stride}",
        if max { "max" } else { "avg" }
    );
    let x = Var::from_tensor(&random(&[n, c, h, w], 11)).unwrap();
    let (a, b) = if max {
        (
            nn::max_pool2d_with_stride(&x, k, stride).unwrap(),
            x.max_pool2d_with_stride(k, stride).unwrap(),
        )
    } else {
        (
            nn::avg_pool2d_with_stride(&x, k, stride).unwrap(),
            x.avg_pool2d_with_stride(k, stride).unwrap(),
        )
    };
    check(&format!("{case}: forward"), &a, &b);
    // candle's backward covers only windows that tile the image, and its max-pool gradient
    // is the true one times (maxima in the window) / k^2 (it multiplies by the mask's
    // average): a window's single maximum gets 1/k^2 of the gradient. Against candle, the
    // tiling cases; against PyTorch (the fixture below), all.
    if k == stride && h % k == 0 && w % k == 0 {
        let ga = weighted_sum(&a, 5).backward().unwrap();
        let gb = weighted_sum(&b, 5).backward().unwrap();
        let theirs = if max {
            (gb.get(&x).unwrap() * (k * k) as f64).unwrap()
        } else {
            gb.get(&x).unwrap().clone()
        };
        check(&format!("{case}: grad"), ga.get(&x).unwrap(), &theirs);
    }
}

#[test]
fn pools_match_candle() {
    for max in [true, false] {
        pool_case(max, 3, 8, 24, 24, 2, 2);
        pool_case(max, 1, 2, 7, 9, 2, 2);
        pool_case(max, 2, 3, 9, 8, 3, 3);
        pool_case(max, 1, 1, 5, 6, 2, 1);
    }
}

#[test]
fn linear_and_relu_match_candle() {
    for (n, inp, out, bias) in [(1, 7, 3, true), (33, 256, 10, true), (130, 784, 128, false)] {
        let case = format!("linear n{n} {inp}->{out} bias{bias}");
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let ours = if bias {
            nn::linear(inp, out, vb.pp("l")).unwrap()
        } else {
            nn::linear_no_bias(inp, out, vb.pp("l")).unwrap()
        };
        let theirs = candle_nn::Linear::new(ours.weight().clone(), ours.bias().cloned());
        let x = Var::from_tensor(&random(&[n, inp], 13)).unwrap();
        let (a, b) = (
            nn::relu(&ours.forward(&x).unwrap()).unwrap(),
            theirs.forward(&x).unwrap().relu().unwrap(),
        );
        check(&format!("{case}: forward"), &a, &b);
        let ga = weighted_sum(&a, 17).backward().unwrap();
        let gb = weighted_sum(&b, 17).backward().unwrap();
        check(&format!("{case}: input grad"), ga.get(&x).unwrap(), gb.get(&x).unwrap());
        check(
            &format!("{case}: weight grad"),
            ga.get(ours.weight()).unwrap(),
            gb.get(ours.weight()).unwrap(),
        );
        if let Some(bt) = ours.bias() {
            check(&format!("{case}: bias grad"), ga.get(bt).unwrap(), gb.get(bt).unwrap());
        }
    }
    // Leading dimensions are carried through, as candle-nn's Linear does.
    let varmap = VarMap::new();
    let l = nn::linear(6, 4, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
    let theirs = candle_nn::Linear::new(l.weight().clone(), l.bias().cloned());
    let x = random(&[2, 3, 6], 2);
    check("rank-3 linear", &l.forward(&x).unwrap(), &theirs.forward(&x).unwrap());
}

#[test]
fn layers_reject_mismatched_shapes_with_an_error() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let conv = nn::conv2d(3, 4, 5, Default::default(), vb.pp("c")).unwrap();
    let err = conv.forward(&random(&[1, 2, 8, 8], 1)).unwrap_err().to_string();
    assert!(err.contains("channels"), "{err}");
    let err = conv.forward(&random(&[1, 3, 3, 3], 1)).unwrap_err().to_string();
    assert!(err.contains("does not fit"), "{err}");
    let err = nn::max_pool2d(&random(&[1, 1, 1, 1], 1), 2).unwrap_err().to_string();
    assert!(err.contains("does not fit"), "{err}");
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn usize_of(c: &serde_json::Value, key: &str) -> usize {
    c[key].as_u64().unwrap() as usize
}

/// PyTorch's numbers (`fixtures/layers/gen_layers.py`): conv2d with stride, padding and
/// sizes the stride does not divide; max and average pooling, overlapping windows and odd
/// sizes included.
#[test]
fn conv2d_and_pools_match_pytorch() {
    let fixture: serde_json::Value = serde_json::from_str(include_str!("../fixtures/layers/layers.json")).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 9);
    for c in cases {
        let kind = c["kind"].as_str().unwrap();
        let n = usize_of(c, "n");
        let (h, w) = (usize_of(c, "h"), usize_of(c, "w"));
        let out_shape: Vec<usize> = c["out_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let t = |key: &str, shape: &[usize]| Tensor::from_vec(floats(&c[key]), shape, &Device::Cpu).unwrap();
        let r = t("r", &out_shape);
        let case = format!("{kind} {c}").chars().take(60).collect::<String>();
        if kind == "conv2d" {
            let (cin, cout, k) = (usize_of(c, "cin"), usize_of(c, "cout"), usize_of(c, "k"));
            let x = Var::from_tensor(&t("x", &[n, cin, h, w])).unwrap();
            let weight = Var::from_tensor(&t("weight", &[cout, cin, k, k])).unwrap();
            let bias = (!c["bias"].is_null()).then(|| Var::from_tensor(&t("bias", &[cout])).unwrap());
            let cfg = Conv2dConfig {
                padding: usize_of(c, "pad"),
                stride: usize_of(c, "stride"),
                ..Default::default()
            };
            let conv = nn::Conv2d::new(
                weight.as_tensor().clone(),
                bias.as_ref().map(|b| b.as_tensor().clone()),
                cfg,
            );
            let out = conv.forward(&x).unwrap();
            check(&format!("{case}: forward"), &out, &t("out", &out_shape));
            let g = (&out * &r).unwrap().sum_all().unwrap().backward().unwrap();
            check(&format!("{case}: dx"), g.get(&x).unwrap(), &t("dx", &[n, cin, h, w]));
            check(
                &format!("{case}: dweight"),
                g.get(&weight).unwrap(),
                &t("dweight", &[cout, cin, k, k]),
            );
            if let Some(b) = &bias {
                check(&format!("{case}: dbias"), g.get(b).unwrap(), &t("dbias", &[cout]));
            }
        } else {
            let (ch, k, s) = (usize_of(c, "c"), usize_of(c, "k"), usize_of(c, "stride"));
            let x = Var::from_tensor(&t("x", &[n, ch, h, w])).unwrap();
            let out = if kind == "max_pool2d" {
                nn::max_pool2d_with_stride(&x, k, s).unwrap()
            } else {
                nn::avg_pool2d_with_stride(&x, k, s).unwrap()
            };
            check(&format!("{case}: forward"), &out, &t("out", &out_shape));
            let g = (&out * &r).unwrap().sum_all().unwrap().backward().unwrap();
            check(&format!("{case}: dx"), g.get(&x).unwrap(), &t("dx", &[n, ch, h, w]));
        }
    }
}

/// The built-in networks run through candle's ops wherever the CPU kernels do not apply:
/// on a GPU, and for f64 on the CPU. Here the f64 run (the code a GPU takes, in f64) is set
/// against the f32 run (the CPU custom ops) from the same weights: every gradient of the
/// cross-entropy must agree to within f32 rounding, relative error <= 1e-5.
#[test]
fn networks_through_candles_ops_have_the_custom_ops_gradients() {
    use stride_model::{reset_parameters, Activation, Architecture, Model, Network};
    for (model, conv) in [
        ("mlp", "lenet"),
        ("cnn", "lenet"),
        // Stride 2, padding, both pools, a hidden layer.
        ("cnn", "c6k3s2p1-ap2-c8k3p1-mp2-f16"),
    ] {
        let arch = Architecture::from_args(model, "64-32", conv, (1, 28, 28), 10).unwrap();
        let build = |dtype| {
            let varmap = VarMap::new();
            let vb = VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu);
            let net = Network::new(&arch, Activation::Relu, vb).unwrap();
            (net, varmap)
        };
        let (net32, vars32) = build(DType::F32);
        let (net64, vars64) = build(DType::F64);
        reset_parameters(&vars32, 3).unwrap();
        let (d32, d64) = (vars32.data().lock().unwrap(), vars64.data().lock().unwrap());
        for (name, v) in d32.iter() {
            d64[name].set(&v.to_dtype(DType::F64).unwrap()).unwrap();
        }
        let x = random(&[9, 1, 28, 28], 21);
        // The MLP takes flat images, as the data loader gives them.
        let x = if model == "mlp" { x.flatten_from(1).unwrap() } else { x };
        let y = Tensor::from_vec((0..9u32).map(|i| i % 10).collect(), 9, &Device::Cpu).unwrap();
        let loss =
            |net: &Network, x: &Tensor| candle_nn::loss::cross_entropy(&net.logits(x, true).unwrap(), &y).unwrap();
        let (l32, l64) = (loss(&net32, &x), loss(&net64, &x.to_dtype(DType::F64).unwrap()));
        let (g32, g64) = (l32.backward().unwrap(), l64.backward().unwrap());
        check(&format!("{arch}: loss"), &l32, &l64.to_dtype(DType::F32).unwrap());
        for (name, v) in d32.iter() {
            let a = g32
                .get(v)
                .unwrap_or_else(|| panic!("{arch}: no f32 gradient for {name}"));
            let b = g64
                .get(&d64[name])
                .unwrap_or_else(|| panic!("{arch}: no f64 gradient for {name}"));
            check(
                &format!("{arch}: gradient of {name}"),
                a,
                &b.to_dtype(DType::F32).unwrap(),
            );
        }
    }
}
