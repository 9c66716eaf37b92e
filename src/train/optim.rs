//! Optimisers on plain (untracked) parameter tensors, one state slot per parameter tensor.
//! Conventions follow PyTorch's so that numbers can be compared with published code.

use burn::tensor::{backend::Backend, Tensor};

use crate::spec::OptimizerConfig;

/// An optimiser with its running state (saved with the trial state, see `train::state`).
#[derive(Debug, Clone)]
pub struct Optimizer<B: Backend> {
    cfg: OptimizerConfig,
    /// Updates made so far (Adam's bias correction).
    pub(crate) t: i32,
    /// First moment (Adam) or momentum buffer (SGD).
    pub(crate) first: Vec<Option<Tensor<B, 2>>>,
    /// Second moment (Adam, RMSProp).
    pub(crate) second: Vec<Option<Tensor<B, 2>>>,
    /// Each tensor's learning rate over `lr` (1 but for a fine-tuned prior model's tensors,
    /// which have their own rate): the steps are scaled by it, which for SGD, Adam and
    /// RMSProp is exactly a learning rate of its own.
    pub(crate) lr_scale: Vec<f64>,
}

impl<B: Backend> Optimizer<B> {
    /// A fresh optimiser for `n` parameter tensors.
    pub fn new(cfg: OptimizerConfig, n: usize) -> Self {
        Optimizer {
            cfg,
            t: 0,
            first: vec![None; n],
            second: vec![None; n],
            lr_scale: vec![1.0; n],
        }
    }

    /// The same optimiser with learning rate `lr_scale[i] * lr` for tensor `i`.
    pub fn with_lr_scale(mut self, lr_scale: Vec<f64>) -> Self {
        assert_eq!(lr_scale.len(), self.first.len(), "one scale per tensor");
        self.lr_scale = lr_scale;
        self
    }

    /// The learning rate in force.
    pub fn lr(&self) -> f64 {
        self.cfg.lr()
    }

    /// Applies one update: `params[i] -= step(grads[i])`.
    pub fn step(&mut self, params: &mut [Tensor<B, 2>], grads: Vec<Tensor<B, 2>>) {
        for (p, u) in params.iter_mut().zip(self.updates(grads)) {
            *p = p.clone() - u;
        }
    }

    /// The steps of one update, `step(grads[i])`, with the optimiser's state advanced as
    /// [`Optimizer::step`] advances it; the caller subtracts them (or combines them first, as
    /// the optimistic scheme does).
    pub fn updates(&mut self, grads: Vec<Tensor<B, 2>>) -> Vec<Tensor<B, 2>> {
        self.t += 1;
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.into_iter().enumerate() {
            let update = match &self.cfg {
                OptimizerConfig::Sgd(c) => {
                    if c.momentum == 0.0 {
                        g.mul_scalar(c.lr)
                    } else {
                        let buf = match self.first[i].take() {
                            Some(b) => b.mul_scalar(c.momentum) + g,
                            None => g,
                        };
                        self.first[i] = Some(buf.clone());
                        buf.mul_scalar(c.lr)
                    }
                }
                OptimizerConfig::Adam(c) => {
                    let m = match self.first[i].take() {
                        Some(m) => m.mul_scalar(c.beta1) + g.clone().mul_scalar(1.0 - c.beta1),
                        None => g.clone().mul_scalar(1.0 - c.beta1),
                    };
                    let v = match self.second[i].take() {
                        Some(v) => v.mul_scalar(c.beta2) + g.square().mul_scalar(1.0 - c.beta2),
                        None => g.square().mul_scalar(1.0 - c.beta2),
                    };
                    let bias1 = 1.0 - c.beta1.powi(self.t);
                    let bias2 = 1.0 - c.beta2.powi(self.t);
                    let denom = v.clone().sqrt().div_scalar(bias2.sqrt()) + c.eps;
                    self.first[i] = Some(m.clone());
                    self.second[i] = Some(v);
                    (m / denom).mul_scalar(c.lr / bias1)
                }
                OptimizerConfig::Rmsprop(c) => {
                    let v = match self.second[i].take() {
                        Some(v) => {
                            v.mul_scalar(c.alpha) + g.clone().square().mul_scalar(1.0 - c.alpha)
                        }
                        None => g.clone().square().mul_scalar(1.0 - c.alpha),
                    };
                    self.second[i] = Some(v.clone());
                    (g / (v.sqrt() + c.eps)).mul_scalar(c.lr)
                }
            };
            let scale = self.lr_scale[i];
            out.push(if scale == 1.0 {
                update
            } else {
                update.mul_scalar(scale)
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{host, matrix, CPU};
    use crate::spec::{AdamConfig, RmspropConfig, SgdConfig};
    use burn::backend::NdArray;

    type B = NdArray<f64>;

    fn run(cfg: OptimizerConfig, grads: &[f64]) -> Vec<f64> {
        let mut opt = Optimizer::<B>::new(cfg, 1);
        let mut p = vec![matrix::<B>(vec![1.0], 1, 1, &CPU)];
        let mut out = Vec::new();
        for &g in grads {
            opt.step(&mut p, vec![matrix::<B>(vec![g], 1, 1, &CPU)]);
            out.push(host(p[0].clone())[0]);
        }
        out
    }

    #[test]
    fn sgd_with_negative_momentum_follows_the_recursion() {
        let got = run(
            OptimizerConfig::Sgd(SgdConfig {
                lr: 0.1,
                momentum: -0.5,
            }),
            &[1.0, 2.0, 3.0],
        );
        // buf: 1, -0.5+2 = 1.5, -0.75+3 = 2.25
        let want = [1.0 - 0.1, 0.9 - 0.15, 0.75 - 0.225];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn adam_first_step_moves_by_lr_times_sign() {
        let got = run(
            OptimizerConfig::Adam(AdamConfig {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            }),
            &[4.0],
        );
        assert!((got[0] - (1.0 - 0.01)).abs() < 1e-9);
        // Second step with a constant gradient also moves by lr (bias-corrected moments).
        let got = run(
            OptimizerConfig::Adam(AdamConfig {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 0.0,
            }),
            &[4.0, 4.0],
        );
        assert!((got[1] - (1.0 - 0.02)).abs() < 1e-12);
    }

    #[test]
    fn rmsprop_matches_its_formula() {
        let got = run(
            OptimizerConfig::Rmsprop(RmspropConfig {
                lr: 0.1,
                alpha: 0.9,
                eps: 0.0,
            }),
            &[2.0],
        );
        // v = 0.1 * 4 = 0.4; step = 0.1 * 2 / sqrt(0.4)
        assert!((got[0] - (1.0 - 0.2 / 0.4f64.sqrt())).abs() < 1e-12);
    }
}
