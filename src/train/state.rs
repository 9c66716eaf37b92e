//! A trial's state: everything the next step depends on (parameters, optimiser moments, the
//! position of every random stream training draws from) and nothing else. Saved to the host
//! and loaded back, it continues a trial exactly where it was: bit for bit on the CPU.

use anyhow::Context;
use burn::tensor::{backend::Backend, Tensor};
use rand_chacha::ChaCha8Rng;

use super::optim::Optimizer;
use crate::backend::{matrix, HostArray};
use crate::nets::{Net, ParamSpec};
use crate::rng::{stream, Stream};
use crate::setup::TrialSetup;

/// The random streams training draws from. The others (evaluation, probe batch, plots) are
/// drawn afresh from their start each time they are used, so they carry no state.
#[derive(Debug, Clone)]
pub struct Streams {
    /// Real batches.
    pub data: ChaCha8Rng,
    /// Latent batches.
    pub latent: ChaCha8Rng,
    /// WGAN-GP interpolation weights.
    pub penalty: ChaCha8Rng,
    /// Instance noise.
    pub noise: ChaCha8Rng,
}

impl Streams {
    /// The streams of `seed`, at their start.
    pub fn new(seed: u64) -> Streams {
        Streams {
            data: stream(seed, Stream::Data),
            latent: stream(seed, Stream::Latent),
            penalty: stream(seed, Stream::Penalty),
            noise: stream(seed, Stream::InstanceNoise),
        }
    }

    fn named(&mut self) -> [(&'static str, &mut ChaCha8Rng); 4] {
        [
            ("data", &mut self.data),
            ("latent", &mut self.latent),
            ("penalty", &mut self.penalty),
            ("noise", &mut self.noise),
        ]
    }
}

/// Parameters, optimisers and streams of a trial after `step` steps.
#[derive(Debug, Clone)]
pub struct TrialState<B: Backend> {
    /// Steps whose updates were applied.
    pub step: u64,
    /// The generator's parameter tensors (`Net::param_specs` order).
    pub theta: Vec<Tensor<B, 2>>,
    /// The discriminator's parameter tensors.
    pub phi: Vec<Tensor<B, 2>>,
    pub opt_g: Optimizer<B>,
    pub opt_d: Optimizer<B>,
    pub streams: Streams,
    /// What an update scheme carries from one step to the next (the optimistic scheme's last
    /// updates, say), by name; saved and restored with the rest.
    pub memory: std::collections::BTreeMap<String, Tensor<B, 2>>,
    /// Host numbers a scheme carries, in f64 whatever the trial's precision (the gradient
    /// flow's time and step size), by name; saved and restored with the rest.
    pub scalars: std::collections::BTreeMap<String, f64>,
}

/// A [`TrialState`] on the host, as a checkpoint holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedState {
    pub step: u64,
    /// Updates each optimiser has made (Adam's bias correction).
    pub updates_g: i32,
    pub updates_d: i32,
    /// Word position of each training stream (ChaCha's counter), by name.
    pub streams: Vec<(String, u128)>,
    /// `theta/NAME` and `phi/NAME` (parameters); `opt_g/first/NAME`, `opt_g/second/NAME`,
    /// `opt_d/...` (optimiser moments, where the optimiser has them yet); `memory/NAME` (the
    /// update scheme's memory); `scalar/NAME` (its host numbers).
    pub arrays: Vec<HostArray>,
}

fn values_of<B: Backend>(net: &Net, values: Vec<Vec<f64>>, dev: &B::Device) -> Vec<Tensor<B, 2>> {
    net.param_specs()
        .iter()
        .zip(values)
        .map(|(s, v)| matrix::<B>(v, s.rows, s.cols, dev))
        .collect()
}

impl<B: Backend> TrialState<B> {
    /// The state before the first step: both players initialised from their seeded streams.
    pub fn initial(setup: &TrialSetup, device: &B::Device) -> TrialState<B> {
        let seed = setup.cfg.seed;
        let game = &setup.game;
        let theta_values = game
            .generator
            .init(&mut stream(seed, Stream::InitGenerator));
        let phi_values = game
            .discriminator
            .init(&mut stream(seed, Stream::InitDiscriminator));
        let theta = values_of::<B>(&game.generator, theta_values, device);
        let phi = values_of::<B>(&game.discriminator, phi_values, device);
        let mut state = TrialState {
            step: 0,
            opt_g: Optimizer::new(setup.cfg.train.opt_g.clone(), theta.len())
                .with_lr_scale(setup.game.generator_lr_scale.clone()),
            opt_d: Optimizer::new(setup.cfg.train.opt_d.clone(), phi.len()),
            theta,
            phi,
            streams: Streams::new(seed),
            memory: Default::default(),
            scalars: Default::default(),
        };
        super::spectral::start(setup, &mut state);
        state
    }

    /// The state as host arrays.
    pub fn save(&self, setup: &TrialSetup) -> SavedState {
        let specs_g = setup.game.generator.param_specs();
        let specs_d = setup.game.discriminator.param_specs();
        let mut arrays = Vec::new();
        for (prefix, specs, params) in [
            ("theta", &specs_g, &self.theta),
            ("phi", &specs_d, &self.phi),
        ] {
            for (s, p) in specs.iter().zip(params) {
                arrays.push(HostArray::of(format!("{prefix}/{}", s.name), p));
            }
        }
        for (prefix, specs, opt) in [
            ("opt_g", &specs_g, &self.opt_g),
            ("opt_d", &specs_d, &self.opt_d),
        ] {
            for (moment, slots) in [("first", &opt.first), ("second", &opt.second)] {
                for (s, m) in specs.iter().zip(slots) {
                    if let Some(m) = m {
                        arrays.push(HostArray::of(format!("{prefix}/{moment}/{}", s.name), m));
                    }
                }
            }
        }
        for (name, m) in &self.memory {
            arrays.push(HostArray::of(format!("memory/{name}"), m));
        }
        for (name, x) in &self.scalars {
            arrays.push(HostArray {
                name: format!("scalar/{name}"),
                shape: vec![1],
                values: vec![*x],
            });
        }
        let mut streams = self.streams.clone();
        SavedState {
            step: self.step,
            updates_g: self.opt_g.t,
            updates_d: self.opt_d.t,
            // By name, the order the state file keeps them in.
            streams: {
                let mut v: Vec<(String, u128)> = streams
                    .named()
                    .into_iter()
                    .map(|(name, rng)| (name.to_string(), rng.get_word_pos()))
                    .collect();
                v.sort();
                v
            },
            arrays,
        }
    }

    /// The state a checkpoint holds, for the trial `setup` describes. Every parameter must be
    /// there with its shape; a moment that is missing is one the optimiser had not made yet.
    pub fn restore(
        setup: &TrialSetup,
        saved: &SavedState,
        device: &B::Device,
    ) -> anyhow::Result<TrialState<B>> {
        let find = |name: &str, spec: &ParamSpec| -> anyhow::Result<Option<Tensor<B, 2>>> {
            let Some(a) = saved.arrays.iter().find(|a| a.name == name) else {
                return Ok(None);
            };
            if a.shape != [spec.rows, spec.cols] || a.values.len() != spec.len() {
                anyhow::bail!(
                    "`{name}` has shape {:?}, the trial's game needs [{}, {}]",
                    a.shape,
                    spec.rows,
                    spec.cols
                );
            }
            Ok(Some(matrix::<B>(
                a.values.clone(),
                spec.rows,
                spec.cols,
                device,
            )))
        };
        let mut state = TrialState::<B>::initial(setup, device);
        let specs_g = setup.game.generator.param_specs();
        let specs_d = setup.game.discriminator.param_specs();
        for (prefix, specs, params, opt, updates) in [
            (
                "theta",
                &specs_g,
                &mut state.theta,
                &mut state.opt_g,
                saved.updates_g,
            ),
            (
                "phi",
                &specs_d,
                &mut state.phi,
                &mut state.opt_d,
                saved.updates_d,
            ),
        ] {
            let opt_prefix = if prefix == "theta" { "opt_g" } else { "opt_d" };
            for (i, s) in specs.iter().enumerate() {
                let name = format!("{prefix}/{}", s.name);
                params[i] = find(&name, s)?.with_context(|| format!("`{name}` is missing"))?;
                opt.first[i] = find(&format!("{opt_prefix}/first/{}", s.name), s)?;
                opt.second[i] = find(&format!("{opt_prefix}/second/{}", s.name), s)?;
            }
            opt.t = updates;
        }
        for (name, rng) in state.streams.named() {
            let pos = match saved.streams.iter().find(|(n, _)| n == name) {
                Some((_, pos)) => *pos,
                // State files from before instance noise: that stream was never drawn from.
                None if name == "noise" => 0,
                None => anyhow::bail!("the position of the `{name}` stream is missing"),
            };
            rng.set_word_pos(pos);
        }
        for a in &saved.arrays {
            if let Some(name) = a.name.strip_prefix("memory/") {
                let [rows, cols] = a.shape[..] else {
                    anyhow::bail!("`{}` has shape {:?}, not a matrix", a.name, a.shape);
                };
                let m = matrix::<B>(a.values.clone(), rows, cols, device);
                state.memory.insert(name.to_string(), m);
            }
            if let Some(name) = a.name.strip_prefix("scalar/") {
                let [x] = a.values[..] else {
                    anyhow::bail!("`{}` has {} values, not one", a.name, a.values.len());
                };
                state.scalars.insert(name.to_string(), x);
            }
        }
        state.step = saved.step;
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::GanBackend;
    use crate::backend::{CpuF32, CpuF64, CPU, CPU_F32};
    use crate::spec::{Loss, OptimizerConfig, RmspropConfig, SgdConfig, TrialConfig, UpdateScheme};
    use crate::train::Trainer;

    /// Steps 0..10 in one go, and steps 0..4 then a restore of the saved state into a new
    /// trainer for steps 4..10, give the same records bit for bit.
    fn resumes_exactly<B: GanBackend>(cfg: &TrialConfig, dev: B::Device) {
        let mut whole = Trainer::<B>::new(cfg, dev.clone()).unwrap();
        let want: Vec<_> = (0..10).map(|_| whole.step()).collect();
        let mut first = Trainer::<B>::new(cfg, dev.clone()).unwrap();
        for _ in 0..4 {
            first.step();
        }
        let saved = first.state.save(first.setup());
        let mut second = Trainer::<B>::new(cfg, dev.clone()).unwrap();
        second.state = TrialState::restore(second.setup(), &saved, &dev).unwrap();
        assert_eq!(second.state.step, 4);
        let got: Vec<_> = (4..10).map(|_| second.step()).collect();
        assert_eq!(&want[4..], &got[..]);
        assert_eq!(whole.flat_parameters(), second.flat_parameters());
    }

    #[test]
    fn a_restored_state_continues_bit_for_bit() {
        let mut cfg = TrialConfig::default();
        if let crate::spec::GeneratorConfig::Mlp(m) = &mut cfg.generator {
            m.width = 8;
        }
        if let crate::spec::DiscriminatorConfig::Mlp(m) = &mut cfg.discriminator {
            m.width = 8;
        }
        cfg.train.batch = 16;
        // Adam (both moments), every stream (WGAN-GP draws interpolation weights), n_critic.
        cfg.objective.loss = Loss::WganGp;
        cfg.train.n_critic = 2;
        resumes_exactly::<CpuF32>(&cfg, CPU_F32);
        // SGD with momentum and RMSProp, alternating, f64.
        cfg.precision = crate::spec::Precision::F64;
        cfg.train.update = UpdateScheme::Alternating;
        cfg.train.opt_g = OptimizerConfig::Sgd(SgdConfig {
            lr: 0.01,
            momentum: -0.3,
        });
        cfg.train.opt_d = OptimizerConfig::Rmsprop(RmspropConfig::default());
        resumes_exactly::<CpuF64>(&cfg, CPU);
        // The other schemes, the optimistic one with its memory of the last updates.
        for update in [
            UpdateScheme::AlternatingGFirst,
            UpdateScheme::Extragradient,
            UpdateScheme::Optimistic,
            UpdateScheme::Consensus,
            UpdateScheme::Sga,
        ] {
            cfg.train.update = update;
            resumes_exactly::<CpuF64>(&cfg, CPU);
        }
        // The flow integrators (rk45's time and step size are host scalars), and a discrete
        // trial's drift (a flow copy in the memory).
        cfg.train.n_critic = 1;
        let sgd = OptimizerConfig::Sgd(SgdConfig {
            lr: 0.05,
            momentum: 0.0,
        });
        cfg.train.opt_g = sgd.clone();
        cfg.train.opt_d = sgd;
        for update in [UpdateScheme::Rk4, UpdateScheme::Rk45] {
            cfg.train.update = update;
            resumes_exactly::<CpuF64>(&cfg, CPU);
        }
        cfg.train.update = UpdateScheme::Simultaneous;
        cfg.record.drift = true;
        resumes_exactly::<CpuF64>(&cfg, CPU);
        // Spectral normalisation's power-iteration vectors.
        cfg.record.drift = false;
        cfg.objective.spectral_norm = true;
        resumes_exactly::<CpuF64>(&cfg, CPU);
    }

    #[test]
    fn a_state_of_another_game_is_refused() {
        let cfg = TrialConfig::default();
        let t = Trainer::<CpuF64>::new(&cfg, CPU).unwrap();
        let mut saved = t.state.save(t.setup());
        saved.arrays[0].shape = vec![3, 3];
        let e = TrialState::<crate::train::Inner<CpuF64>>::restore(t.setup(), &saved, &CPU)
            .unwrap_err();
        assert!(format!("{e:#}").contains("theta/l0.w"), "{e:#}");
    }
}
