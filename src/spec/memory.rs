//! A trial's memory, estimated before anything runs, so that a configuration too large for
//! this machine is refused by `validate` (naming the key that makes it large) instead of
//! aborting the whole sweep on an allocation failure.
//!
//! The estimate errs high: every parameter tensor five times over (values, gradients, two
//! optimiser moments, the copy a step lifts into its graph); every activation of the
//! generator's batch and of the discriminator's real and fake rows kept three times (forward
//! output, saved input, gradient), three times more under an input-gradient penalty's nested
//! pass; and the probes' dense Jacobian three times in f64 (the matrix, its balanced copy, the
//! eigensolver's work) or their Krylov basis.

use super::config::*;

/// Bytes of one trial's largest parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    pub generator: f64,
    pub discriminator: f64,
    pub probes: f64,
}

impl MemoryEstimate {
    pub fn total(&self) -> f64 {
        self.generator + self.discriminator + self.probes
    }

    /// The key to change to make the estimate smaller: the one behind its largest part.
    pub fn largest_key(&self, c: &TrialConfig) -> &'static str {
        let mlp = |g: bool| match g {
            true => matches!(
                c.generator,
                GeneratorConfig::Mlp(_) | GeneratorConfig::Dcgan(_)
            ),
            false => matches!(
                c.discriminator,
                DiscriminatorConfig::Mlp(_)
                    | DiscriminatorConfig::Dcgan(_)
                    | DiscriminatorConfig::Ebgan(_)
            ),
        };
        if self.probes >= self.generator.max(self.discriminator) {
            "probe.max_dense"
        } else if self.generator >= self.discriminator && mlp(true) {
            "generator.width"
        } else if mlp(false) {
            "discriminator.width"
        } else {
            "train.batch"
        }
    }
}

/// Dimension of the data rows a configuration names (a CSV file's is not known before it is
/// read: one column is assumed).
fn data_dim(d: &DataConfig) -> usize {
    match d {
        DataConfig::Dirac(_) | DataConfig::Mixture1d(_) | DataConfig::Csv(_) => 1,
        DataConfig::Ring(_)
        | DataConfig::Grid(_)
        | DataConfig::SwissRoll(_)
        | DataConfig::Regression(_) => 2,
        DataConfig::Images(x) => x.channels * x.size * x.size,
    }
}

/// (parameters, activations per row) of an MLP from `input` to `output`.
fn mlp_size(m: &MlpConfig, input: usize, output: usize) -> (f64, f64) {
    let mut dims = vec![input as f64];
    dims.extend(std::iter::repeat_n(m.width as f64, m.depth));
    dims.push(output as f64);
    let params = dims.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
    (params, dims.iter().sum())
}

/// (parameters, activations per row) of a DCGAN player: its parameter count, and every
/// feature map it makes (each layer's output, counted twice for the normalisation's copy,
/// and the convolutions' gathered rows).
fn dcgan_size(d: &DcganConfig, data: &DataConfig, generator: bool, z_dim: usize) -> (f64, f64) {
    use crate::nets::dcgan::{base_side, Dcgan, Role};
    let DataConfig::Images(images) = data else {
        return (0.0, 0.0);
    };
    let image = crate::data::images::ImageShape {
        channels: images.channels,
        size: images.size,
    };
    let net = Dcgan {
        role: match generator {
            true => Role::Generator { z_dim },
            false => Role::Discriminator { outputs: 1 },
        },
        image,
        width: d.width,
        norm: d.norm,
    };
    let params: usize = net.param_specs().iter().map(|s| s.len()).sum();
    let (mut side, k) = base_side(images.size);
    let mut maps = 0usize;
    for i in 0..k {
        maps += (d.width << (k - 1 - i)) * side * side;
        side *= 2;
    }
    // On burn-flex each convolution also keeps the rows it gathers or scatters (`nets::conv`):
    // four times its map at the larger side.
    let convolution_rows = 4 * (maps + image.len());
    (
        params as f64,
        (2 * maps + image.len() + convolution_rows) as f64,
    )
}

/// ((parameters, activations per row) of the generator, the same of the discriminator).
fn player_sizes(c: &TrialConfig) -> ((f64, f64), (f64, f64)) {
    let x = data_dim(&c.data);
    let (pg, ag) = match &c.generator {
        GeneratorConfig::Mlp(m) => mlp_size(m, c.latent.dim, x),
        GeneratorConfig::Dirac(_) => (x as f64, (c.latent.dim + x) as f64),
        GeneratorConfig::Dcgan(d) => dcgan_size(d, &c.data, true, c.latent.dim),
    };
    let (pd, ad) = match &c.discriminator {
        DiscriminatorConfig::Mlp(m) => mlp_size(m, x, 1),
        DiscriminatorConfig::Linear(_) => (x as f64, (x + 1) as f64),
        DiscriminatorConfig::Dcgan(d) => dcgan_size(d, &c.data, false, c.latent.dim),
        DiscriminatorConfig::Ebgan(e) => match &c.data {
            DataConfig::Images(_) => {
                let half = DcganConfig {
                    width: e.width,
                    norm: e.norm,
                };
                let (pe, ae) = dcgan_size(&half, &c.data, false, e.code_dim);
                let (pd, ad) = dcgan_size(&half, &c.data, true, e.code_dim);
                (pe + pd, ae + ad)
            }
            _ => {
                let half = MlpConfig {
                    depth: e.depth,
                    width: e.width,
                    activation: e.activation,
                };
                let (pe, ae) = mlp_size(&half, x, e.code_dim);
                let (pd, ad) = mlp_size(&half, e.code_dim, x);
                (pe + pd, ae + ad)
            }
        },
    };
    ((pg, ag), (pd, ad))
}

/// Parameters of both players of a trial's game: the size of its Jacobian's side.
pub fn game_parameters(c: &TrialConfig) -> f64 {
    let ((pg, _), (pd, _)) = player_sizes(c);
    pg + pd
}

/// Bytes of a dense probe of a game of `n` parameters: the n x n Jacobian in f64 three times
/// (the matrix, its balanced copy, the eigensolver's work).
pub fn dense_probe_bytes(n: f64) -> f64 {
    8.0 * 3.0 * n * n
}

/// The estimate for one trial.
pub fn estimate(c: &TrialConfig) -> MemoryEstimate {
    let ((pg, ag), (pd, ad)) = player_sizes(c);
    let elt = match c.precision {
        Precision::F32 => 4.0,
        Precision::F64 => 8.0,
    };
    let batch = c.train.batch as f64;
    let nested = match (c.objective.loss, c.objective.regulariser) {
        (Loss::WganGp, _) | (_, Regulariser::R1 | Regulariser::R2) => 3.0,
        _ => 1.0,
    };
    let generator = elt * (5.0 * pg + 3.0 * batch * ag);
    let discriminator = elt * (5.0 * pd + 3.0 * nested * 2.0 * batch * ad);
    let n = pg + pd;
    let probes = if c.probe.every == 0 {
        0.0
    } else if n <= c.probe.max_dense as f64 {
        dense_probe_bytes(n)
    } else {
        8.0 * (c.probe.max_krylov as f64 + 2.0) * n * 2.0
    };
    MemoryEstimate {
        generator,
        discriminator,
        probes,
    }
}

/// This machine's memory in bytes (None where it cannot be read).
pub fn machine_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024.0)
}

/// Bytes as GiB with two digits.
pub fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / (1u64 << 30) as f64)
}
