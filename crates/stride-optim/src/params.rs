use candle_core::Var;

/// Variables that share a learning-rate scale and, optionally, a weight decay.
///
/// The optimizer's learning rate (the one schedules and the monitor set) is
/// the base; a group trains at `base * lr_scale`, so a schedule scales every
/// group alike. `weight_decay: None` uses the optimizer's own setting.
#[derive(Debug, Clone)]
pub struct ParamGroup {
    /// The variables.
    pub vars: Vec<Var>,
    /// Multiplier of the base learning rate (default 1).
    pub lr_scale: f64,
    /// Weight decay of this group, overriding the optimizer's.
    pub weight_decay: Option<f64>,
}

impl ParamGroup {
    /// A group at the base rate with the optimizer's weight decay.
    pub fn new(vars: Vec<Var>) -> Self {
        Self {
            vars,
            lr_scale: 1.0,
            weight_decay: None,
        }
    }

    /// Sets the learning-rate multiplier, e.g. 10 for a freshly added last layer.
    pub fn lr_scale(mut self, scale: f64) -> Self {
        self.lr_scale = scale;
        self
    }

    /// Sets a weight decay for this group only, e.g. 0 for biases and norms.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = Some(weight_decay);
        self
    }
}
