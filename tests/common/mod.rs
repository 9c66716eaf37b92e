//! Helpers shared by the integration tests.

use ganlab::spec::{
    DataConfig, DiracData, DiscriminatorConfig, GeneratorConfig, Loss, OptimizerConfig, Precision,
    ScalarInit, SgdConfig, TrialConfig,
};

#[allow(dead_code)]
/// The Dirac-GAN of Mescheder et al. (data at 0, G = theta, D(x) = psi x) in f64, both players
/// on plain SGD with step `lr`. The batch size does not change its numbers.
pub fn dirac_game(loss: Loss, theta: f64, psi: f64, lr: f64) -> TrialConfig {
    let mut c = TrialConfig::default();
    c.precision = Precision::F64;
    c.data = DataConfig::Dirac(DiracData { at: 0.0 });
    c.generator = GeneratorConfig::Dirac(ScalarInit { init: theta });
    c.discriminator = DiscriminatorConfig::Linear(ScalarInit { init: psi });
    c.objective.loss = loss;
    c.train.batch = 4;
    c.train.opt_g = OptimizerConfig::Sgd(SgdConfig { lr, momentum: 0.0 });
    c.train.opt_d = OptimizerConfig::Sgd(SgdConfig { lr, momentum: 0.0 });
    c
}

/// |a - b| / |b| and |b|^2 (Euclidean over all entries): a computed Jacobian `a` against its
/// finite-difference reference `b`, with the reference's size to show the test is not void.
#[allow(dead_code)]
pub fn relative_error(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        diff += (x - y).powi(2);
        norm += y * y;
    }
    (diff.sqrt() / norm.sqrt(), norm)
}

pub mod study;
