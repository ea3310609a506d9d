//! A convolutional network described by a short spec such as `"c8k5-mp2-c16k5-mp2"`,
//! built from Stride's layers ([`crate::nn`]).

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder, VarMap};

use crate::error::{ModelError, Result};
use crate::mlp::Activation;
use crate::nn;

/// One item of a CNN spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CnnLayer {
    /// `c<out>k<k>[s<stride>][p<pad>]`: a convolution followed by the activation.
    Conv {
        /// Output channels.
        out: usize,
        /// Kernel side.
        kernel: usize,
        /// Stride (1 when not given).
        stride: usize,
        /// Zero padding on every side (0 when not given).
        padding: usize,
    },
    /// `mp<k>`: max pooling over k x k windows, k apart.
    MaxPool(usize),
    /// `ap<k>`: average pooling over k x k windows, k apart.
    AvgPool(usize),
    /// `f<width>`: a fully connected hidden layer followed by the activation.
    Dense(usize),
}

/// The layers of a CNN before its classifier, e.g. `"c8k5-mp2-c16k5-mp2"` (the
/// `lenet` preset) or `"c6k5p2-mp2-c16k5-mp2-f120-f84"` (`lenet5`); the last linear
/// layer, to the classes, is added by the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnnSpec {
    /// The layers in order.
    pub layers: Vec<CnnLayer>,
}

/// Named specs: `lenet` (the layers issue's reference network) and `lenet5`.
pub const CNN_PRESETS: [(&str, &str); 2] = [
    ("lenet", "c8k5-mp2-c16k5-mp2"),
    ("lenet5", "c6k5p2-mp2-c16k5-mp2-f120-f84"),
];

impl FromStr for CnnSpec {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        let text = CNN_PRESETS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s.trim()))
            .map_or(s.trim(), |(_, spec)| spec);
        let bad = |part: &str, why: &str| ModelError::Spec {
            spec: s.to_string(),
            message: format!(
                "{part:?} {why}; expected items joined by '-': c<out>k<kernel>[s<stride>][p<pad>], mp<k>, ap<k>, \
                 f<width>, e.g. c8k5-mp2-c16k5-mp2, or a preset (lenet, lenet5)"
            ),
        };
        let mut layers = Vec::new();
        for part in text.split('-') {
            let part = part.trim();
            let number = |t: &str| t.parse::<usize>().ok().filter(|&v| v > 0);
            let layer = if let Some(rest) = part.strip_prefix("mp") {
                CnnLayer::MaxPool(number(rest).ok_or_else(|| bad(part, "is not a pool size"))?)
            } else if let Some(rest) = part.strip_prefix("ap") {
                CnnLayer::AvgPool(number(rest).ok_or_else(|| bad(part, "is not a pool size"))?)
            } else if let Some(rest) = part.strip_prefix('f') {
                CnnLayer::Dense(number(rest).ok_or_else(|| bad(part, "is not a layer width"))?)
            } else if let Some(rest) = part.strip_prefix('c') {
                conv_item(rest).ok_or_else(|| bad(part, "is not a convolution"))?
            } else {
                return Err(bad(part, "is not a layer"));
            };
            layers.push(layer);
        }
        if !layers.iter().any(|l| matches!(l, CnnLayer::Conv { .. })) {
            return Err(bad(text, "has no convolution"));
        }
        if let Some(i) = layers.iter().position(|l| matches!(l, CnnLayer::Dense(_))) {
            if layers[i..].iter().any(|l| !matches!(l, CnnLayer::Dense(_))) {
                return Err(bad(text, "has a convolution or pool after a fully connected layer"));
            }
        }
        Ok(Self { layers })
    }
}

/// `<out>k<k>[s<stride>][p<pad>]`.
fn conv_item(rest: &str) -> Option<CnnLayer> {
    let (out, rest) = rest.split_once('k')?;
    let (mut kernel, mut stride, mut padding) = (rest, "1", "0");
    if let Some((k, p)) = kernel.split_once('p') {
        kernel = k;
        padding = p;
    }
    if let Some((k, s)) = kernel.split_once('s') {
        kernel = k;
        stride = s;
    }
    let positive = |t: &str| t.parse::<usize>().ok().filter(|&v| v > 0);
    Some(CnnLayer::Conv {
        out: positive(out)?,
        kernel: positive(kernel)?,
        stride: positive(stride)?,
        padding: padding.parse().ok()?,
    })
}

impl fmt::Display for CnnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .layers
            .iter()
            .map(|l| match *l {
                CnnLayer::Conv {
                    out,
                    kernel,
                    stride,
                    padding,
                } => {
                    let mut s = format!("c{out}k{kernel}");
                    if stride != 1 {
                        s += &format!("s{stride}");
                    }
                    if padding != 0 {
                        s += &format!("p{padding}");
                    }
                    s
                }
                CnnLayer::MaxPool(k) => format!("mp{k}"),
                CnnLayer::AvgPool(k) => format!("ap{k}"),
                CnnLayer::Dense(w) => format!("f{w}"),
            })
            .collect();
        f.write_str(&parts.join("-"))
    }
}

#[derive(Debug, Clone)]
enum Block {
    Conv(nn::Conv2d),
    MaxPool(usize),
    AvgPool(usize),
    Dense(nn::Linear),
}

/// A CNN over `(channels, height, width)` images: the spec's layers, then a linear
/// classifier. Flat inputs `(batch, c * h * w)` are viewed as images.
///
/// Variables are `conv{i}.*` and `fc{i}.*` (i counting every layer, as `nn.Sequential`
/// numbers them), so [`crate::reset_parameters`] initialises them like PyTorch.
#[derive(Debug, Clone)]
pub struct Cnn {
    blocks: Vec<Block>,
    classifier: nn::Linear,
    activation: Activation,
    input: (usize, usize, usize),
}

impl Cnn {
    /// Creates the layers under `vb` for `input = (channels, height, width)` images and
    /// `classes` outputs; fails naming the layer that no longer fits the image.
    pub fn new(
        spec: &CnnSpec,
        input: (usize, usize, usize),
        classes: usize,
        activation: Activation,
        vb: VarBuilder,
    ) -> Result<Self> {
        let (mut c, mut h, mut w) = input;
        let mut flat: Option<usize> = None;
        let mut blocks = Vec::new();
        let too_small = |item: &CnnLayer, h: usize, w: usize| ModelError::Spec {
            spec: spec.to_string(),
            message: format!(
                "{} does not fit the {h}x{w} feature map it gets from a {}x{}x{} input",
                CnnSpec { layers: vec![*item] },
                input.0,
                input.1,
                input.2
            ),
        };
        for (i, item) in spec.layers.iter().enumerate() {
            match *item {
                CnnLayer::Conv {
                    out,
                    kernel,
                    stride,
                    padding,
                } => {
                    if h + 2 * padding < kernel || w + 2 * padding < kernel {
                        return Err(too_small(item, h, w));
                    }
                    let cfg = Conv2dConfig {
                        padding,
                        stride,
                        ..Default::default()
                    };
                    blocks.push(Block::Conv(nn::conv2d(c, out, kernel, cfg, vb.pp(format!("conv{i}")))?));
                    c = out;
                    h = (h + 2 * padding - kernel) / stride + 1;
                    w = (w + 2 * padding - kernel) / stride + 1;
                }
                CnnLayer::MaxPool(k) | CnnLayer::AvgPool(k) => {
                    if h < k || w < k {
                        return Err(too_small(item, h, w));
                    }
                    blocks.push(if matches!(item, CnnLayer::MaxPool(_)) {
                        Block::MaxPool(k)
                    } else {
                        Block::AvgPool(k)
                    });
                    h = (h - k) / k + 1;
                    w = (w - k) / k + 1;
                }
                CnnLayer::Dense(width) => {
                    let from = flat.unwrap_or(c * h * w);
                    blocks.push(Block::Dense(nn::linear(from, width, vb.pp(format!("fc{i}")))?));
                    flat = Some(width);
                }
            }
        }
        let from = flat.unwrap_or(c * h * w);
        let classifier = nn::linear(from, classes, vb.pp(format!("fc{}", spec.layers.len())))?;
        Ok(Self {
            blocks,
            classifier,
            activation,
            input,
        })
    }

    /// A fresh CNN whose f32 CPU variables live in `varmap`, initialised like PyTorch from `seed`.
    pub fn seeded(
        spec: &CnnSpec,
        input: (usize, usize, usize),
        classes: usize,
        activation: Activation,
        varmap: &VarMap,
        seed: u64,
    ) -> Result<Self> {
        let model = Self::new(
            spec,
            input,
            classes,
            activation,
            VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu),
        )?;
        crate::reset_parameters(varmap, seed)?;
        Ok(model)
    }

    /// Forward pass to logits.
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (c, h, w) = self.input;
        let mut xs = if xs.rank() == 4 {
            xs.clone()
        } else {
            xs.reshape((xs.dim(0)?, c, h, w))?
        };
        let mut i = 0;
        while i < self.blocks.len() {
            xs = match (&self.blocks[i], self.blocks.get(i + 1)) {
                // A ReLU convolution followed by a max pool is one fused op.
                (Block::Conv(conv), Some(Block::MaxPool(k))) if self.activation == Activation::Relu => {
                    i += 1;
                    conv.forward_relu_max_pool(&xs, *k)?
                }
                (Block::Conv(conv), _) if self.activation == Activation::Relu => conv.forward_relu(&xs)?,
                (Block::Conv(conv), _) => self.activation.apply(&conv.forward(&xs)?)?,
                (Block::MaxPool(k), _) => nn::max_pool2d(&xs, *k)?,
                (Block::AvgPool(k), _) => nn::avg_pool2d(&xs, *k)?,
                (Block::Dense(fc), _) => self.activation.apply(&fc.forward(&nn::flatten(&xs)?)?)?,
            };
            i += 1;
        }
        self.classifier.forward(&nn::flatten(&xs)?)
    }
}

impl Module for Cnn {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        Cnn::forward(self, xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_print_and_reject() {
        let lenet: CnnSpec = "lenet".parse().unwrap();
        assert_eq!(lenet.to_string(), "c8k5-mp2-c16k5-mp2");
        assert_eq!(
            "c6k5p2-mp2-c16k5s2-f120".parse::<CnnSpec>().unwrap().to_string(),
            "c6k5p2-mp2-c16k5s2-f120"
        );
        for bad in ["", "c8", "c0k5", "x3", "mp2", "c8k5-f10-mp2", "c8k5-mpx"] {
            assert!(bad.parse::<CnnSpec>().is_err(), "{bad:?} accepted");
        }
        let err = "c8k5-q".parse::<CnnSpec>().unwrap_err().to_string();
        assert!(err.contains("\"q\"") && err.contains("e.g. c8k5"), "{err}");
    }

    #[test]
    fn lenet_maps_images_to_logits_and_rejects_what_does_not_fit() {
        let varmap = VarMap::new();
        let spec: CnnSpec = "lenet".parse().unwrap();
        let cnn = Cnn::seeded(&spec, (1, 28, 28), 10, Activation::Relu, &varmap, 0).unwrap();
        let x = Tensor::zeros((3, 784), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(cnn.forward(&x).unwrap().dims(), &[3, 10]);
        // 8*1*5*5+8 + 16*8*5*5+16 + 256*10+10, the PyTorch reference network's count.
        let params: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
        assert_eq!(params, 208 + 3216 + 2570);
        let err = Cnn::seeded(&spec, (1, 10, 10), 10, Activation::Relu, &VarMap::new(), 0).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
    }
}
