//! Batched trials: trials of a study that differ only in their seed, learning rates, penalty
//! weights or clip value, trained as one model whose parameters carry a leading trial
//! dimension (`[trials, rows, cols]`, as the probes stack copies; see `Net::forward`).
//!
//! Each trial keeps its own [`Trainer`]: its set-up, its random streams (every batch is drawn
//! from the trial's own streams, in the order its unbatched run draws them) and, whenever the
//! trial loop needs it (records, probes, checkpoints, its end), its own trial state, written
//! back from the stacks by [`Group::store`]. Between those points the stacks are the state.
//!
//! Every copy's arithmetic is its own: the losses are per copy (`loss::row_mean`), the
//! learning rates, clip values and penalty weights are per-copy tensors, and no reduction runs
//! across copies, so a trial's numbers do not depend on which trials share its group (bit for
//! bit on the CPU). They differ from the trial's unbatched run by rounding only: the stacked
//! products and per-copy reductions sum in another order.

use anyhow::Context;
use burn::tensor::{backend::Backend, Tensor, TensorData};

use super::scheme::step_pool;
use super::{read, DStats, GStats, Inner, StepStats, Trainer};
use crate::backend::{host, matrix, GanBackend};
use crate::game::field::{DiscriminatorPart, GeneratorPart};
use crate::game::{CopyWeights, Game};
use crate::spec::{Loss, OptimizerConfig, TrialConfig, UpdateScheme};

/// The most trials one group trains at once.
pub const MAX_GROUP: usize = 256;

/// What must be equal for two trials to share a group: the configuration with the keys a
/// group may vary removed (penalty weights reduced to whether they are on), as TOML text. `Err`
/// says why a trial cannot be batched at all (it then runs on its own).
pub fn group_key(cfg: &TrialConfig) -> Result<String, String> {
    let scheme = cfg.train.update;
    if !matches!(
        scheme,
        UpdateScheme::Simultaneous | UpdateScheme::Alternating | UpdateScheme::AlternatingGFirst
    ) {
        return Err(format!(
            "train.update = \"{}\" (batched: simultaneous, alternating, alternating_g_first)",
            toml::Value::try_from(scheme)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ));
    }
    if cfg.objective.spectral_norm {
        return Err("objective.spectral_norm (its power iteration is per trial)".into());
    }
    if cfg.record.drift {
        return Err("record.drift (a flow copy per trial)".into());
    }
    if !matches!(cfg.prior_model, crate::spec::PriorModelConfig::None) {
        return Err("a prior model (fitted per trial)".into());
    }
    let mut value = toml::Value::try_from(cfg).map_err(|e| e.to_string())?;
    let table = value.as_table_mut().ok_or("not a table")?;
    table.remove("seed");
    for opt in ["opt_g", "opt_d"] {
        if let Some(t) = table
            .get_mut("train")
            .and_then(|t| t.get_mut(opt))
            .and_then(|t| t.as_table_mut())
        {
            t.remove("lr");
        }
    }
    if let Some(o) = table.get_mut("objective").and_then(|t| t.as_table_mut()) {
        o.remove("clip");
        for w in ["gp_weight", "reg_weight"] {
            let on = o.get(w).and_then(|v| v.as_float()).is_some_and(|x| x > 0.0);
            o.insert(w.into(), toml::Value::Boolean(on));
        }
    }
    toml::to_string(&value).map_err(|e| e.to_string())
}

/// `values` (one per copy) spread over `like`'s shape, in its float type: copy k's entries
/// all `values[k]`. Contiguous, so that scaling by it takes burn-flex's fast path (a
/// `[copies, 1, 1]` broadcast goes element by element through strided indices).
fn per_copy<B: Backend>(values: Vec<f64>, like: &Tensor<B, 3>) -> Tensor<B, 3> {
    let [copies, rows, cols] = like.dims();
    let spread: Vec<f64> = values
        .iter()
        .flat_map(|&v| std::iter::repeat_n(v, rows * cols))
        .collect();
    Tensor::from_data(
        TensorData::new(spread, [copies, rows, cols]).convert_dtype(like.dtype()),
        (&like.device(), like.dtype()),
    )
}

/// Each copy's squared norm of a stacked tensor, `[copies]`.
fn copy_sq_norms<B: Backend>(t: &Tensor<B, 3>) -> Tensor<B, 1> {
    let [copies, rows, cols] = t.dims();
    t.clone()
        .square()
        .reshape([copies, rows * cols])
        .sum_dim(1)
        .reshape([copies])
}

/// One optimiser for all copies: the trials' optimisers agree in everything but the learning
/// rate (their group key), and have made the same number of updates (they step together).
/// The update of each copy is the one [`super::Optimizer`] makes, with the copy's rate.
struct StackedOptimizer<B: Backend> {
    cfg: OptimizerConfig,
    lr: Vec<f64>,
    t: i32,
    first: Vec<Option<Tensor<B, 3>>>,
    second: Vec<Option<Tensor<B, 3>>>,
}

impl<B: Backend> StackedOptimizer<B> {
    fn updates(&mut self, grads: Vec<Tensor<B, 3>>) -> Vec<Tensor<B, 3>> {
        self.t += 1;
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.into_iter().enumerate() {
            let rate = |factor: f64| per_copy(self.lr.iter().map(|r| r * factor).collect(), &g);
            let update = match &self.cfg {
                OptimizerConfig::Sgd(c) => {
                    if c.momentum == 0.0 {
                        g.clone() * rate(1.0)
                    } else {
                        let buf = match self.first[i].take() {
                            Some(b) => b.mul_scalar(c.momentum) + g.clone(),
                            None => g.clone(),
                        };
                        self.first[i] = Some(buf.clone());
                        buf * rate(1.0)
                    }
                }
                OptimizerConfig::Adam(c) => {
                    let m = match self.first[i].take() {
                        Some(m) => m.mul_scalar(c.beta1) + g.clone().mul_scalar(1.0 - c.beta1),
                        None => g.clone().mul_scalar(1.0 - c.beta1),
                    };
                    let v = match self.second[i].take() {
                        Some(v) => {
                            v.mul_scalar(c.beta2) + g.clone().square().mul_scalar(1.0 - c.beta2)
                        }
                        None => g.clone().square().mul_scalar(1.0 - c.beta2),
                    };
                    let bias1 = 1.0 - c.beta1.powi(self.t);
                    let bias2 = 1.0 - c.beta2.powi(self.t);
                    let denom = v.clone().sqrt().div_scalar(bias2.sqrt()) + c.eps;
                    self.first[i] = Some(m.clone());
                    self.second[i] = Some(v);
                    (m / denom) * rate(1.0 / bias1)
                }
                OptimizerConfig::Rmsprop(c) => {
                    let v = match self.second[i].take() {
                        Some(v) => {
                            v.mul_scalar(c.alpha) + g.clone().square().mul_scalar(1.0 - c.alpha)
                        }
                        None => g.clone().square().mul_scalar(1.0 - c.alpha),
                    };
                    self.second[i] = Some(v.clone());
                    (g.clone() / (v.sqrt() + c.eps)) * rate(1.0)
                }
            };
            out.push(update);
        }
        out
    }

    fn step(&mut self, params: &mut [Tensor<B, 3>], grads: Vec<Tensor<B, 3>>) {
        for (p, u) in params.iter_mut().zip(self.updates(grads)) {
            *p = p.clone() - u;
        }
    }
}

/// The stacked state of a group's trials: parameters, optimisers, per-copy clip values.
pub struct Group<B: GanBackend> {
    game: Game,
    scheme: UpdateScheme,
    n_critic: usize,
    theta: Vec<Tensor<Inner<B>, 3>>,
    phi: Vec<Tensor<Inner<B>, 3>>,
    opt_g: StackedOptimizer<Inner<B>>,
    opt_d: StackedOptimizer<Inner<B>>,
    /// `wgan_clip`'s bound per copy, spread over each discriminator tensor's shape.
    clip: Option<Vec<Tensor<Inner<B>, 3>>>,
}

/// A batch of every copy, stacked: real rows, latent rows, interpolation weights.
struct StackedBatch<B: Backend> {
    real: Tensor<B, 3>,
    z: Tensor<B, 3>,
    eps: Option<Tensor<B, 3>>,
}

fn stack_moments<B: Backend>(
    slots: Vec<&Vec<Option<Tensor<B, 2>>>>,
    what: &str,
) -> anyhow::Result<Vec<Option<Tensor<B, 3>>>> {
    let n = slots[0].len();
    (0..n)
        .map(|i| {
            let all: Vec<Option<Tensor<B, 2>>> = slots.iter().map(|s| s[i].clone()).collect();
            if all.iter().all(Option::is_none) {
                return Ok(None);
            }
            let some: Option<Vec<Tensor<B, 2>>> = all.into_iter().collect();
            let some = some.with_context(|| {
                format!("the trials of a batch disagree in whether {what} has moments")
            })?;
            Ok(Some(Tensor::stack(some, 0)))
        })
        .collect()
}

/// The copies of a stacked tensor, each `[rows, cols]`, through the host (exact).
fn unstacked<B: Backend>(stacked: &Tensor<B, 3>) -> Vec<Tensor<B, 2>> {
    let [_, rows, cols] = stacked.dims();
    let device = stacked.device();
    host(stacked.clone())
        .chunks(rows * cols)
        .map(|v| matrix::<B>(v.to_vec(), rows, cols, &device))
        .collect()
}

/// Writes each copy of stacked optimiser moments into its member's slot.
fn store_moments<B: GanBackend>(
    stacked: &[Option<Tensor<Inner<B>, 3>>],
    members: &mut [&mut Trainer<B>],
    slot: impl Fn(&mut Trainer<B>) -> &mut Vec<Option<Tensor<Inner<B>, 2>>>,
) {
    for (i, s) in stacked.iter().enumerate() {
        let Some(s) = s else { continue };
        for (m, t) in members.iter_mut().zip(unstacked(s)) {
            slot(m)[i] = Some(t);
        }
    }
}

impl<B: GanBackend> Group<B> {
    /// The stacks of `members`' trial states, which must share a group key and a step.
    pub fn new(members: &[&mut Trainer<B>]) -> anyhow::Result<Group<B>> {
        let first = members.first().context("a group needs a trial")?;
        let step = first.state.step;
        anyhow::ensure!(
            members.iter().all(|m| m.state.step == step),
            "the trials of a batch must be at the same step"
        );
        let cfgs: Vec<&TrialConfig> = members.iter().map(|m| m.cfg()).collect();
        let mut game = first.setup().game.clone();
        let o = &first.cfg().objective;
        if o.gp_weight > 0.0 || o.reg_weight > 0.0 {
            game.copy_weights = Some(CopyWeights {
                gp: cfgs.iter().map(|c| c.objective.gp_weight).collect(),
                reg: cfgs.iter().map(|c| c.objective.reg_weight).collect(),
            });
        }
        let stack = |f: &dyn Fn(&Trainer<B>) -> &Vec<Tensor<Inner<B>, 2>>| {
            let n = f(first).len();
            (0..n)
                .map(|i| Tensor::stack(members.iter().map(|m| f(m)[i].clone()).collect(), 0))
                .collect::<Vec<_>>()
        };
        let theta = stack(&|m| &m.state.theta);
        let phi = stack(&|m| &m.state.phi);
        let optimizer = |generator: bool| -> anyhow::Result<StackedOptimizer<Inner<B>>> {
            fn opt_of<B: GanBackend>(
                m: &Trainer<B>,
                generator: bool,
            ) -> &super::Optimizer<Inner<B>> {
                if generator {
                    &m.state.opt_g
                } else {
                    &m.state.opt_d
                }
            }
            let opt = |m| opt_of(m, generator);
            let t = opt(first).t;
            anyhow::ensure!(
                members.iter().all(|m| opt(m).t == t),
                "the trials of a batch must have made the same number of updates"
            );
            let name = if generator { "opt_g" } else { "opt_d" };
            Ok(StackedOptimizer {
                cfg: if generator {
                    first.cfg().train.opt_g.clone()
                } else {
                    first.cfg().train.opt_d.clone()
                },
                lr: members.iter().map(|m| opt(m).lr()).collect(),
                t,
                first: stack_moments(members.iter().map(|m| &opt(m).first).collect(), name)?,
                second: stack_moments(members.iter().map(|m| &opt(m).second).collect(), name)?,
            })
        };
        let clip = (o.loss == Loss::WganClip).then(|| {
            let bounds: Vec<f64> = cfgs.iter().map(|c| c.objective.clip).collect();
            phi.iter().map(|p| per_copy(bounds.clone(), p)).collect()
        });
        Ok(Group {
            game,
            scheme: first.cfg().train.update,
            n_critic: first.cfg().train.n_critic,
            opt_g: optimizer(true)?,
            opt_d: optimizer(false)?,
            theta,
            phi,
            clip,
        })
    }

    /// Writes the stacks back into the members' trial states (the same members, in the same
    /// order, as the group was made of).
    pub fn store(&self, members: &mut [&mut Trainer<B>]) {
        for (i, p) in self.theta.iter().enumerate() {
            for (m, t) in members.iter_mut().zip(unstacked(p)) {
                m.state.theta[i] = t;
            }
        }
        for (i, p) in self.phi.iter().enumerate() {
            for (m, t) in members.iter_mut().zip(unstacked(p)) {
                m.state.phi[i] = t;
            }
        }
        for m in members.iter_mut() {
            m.state.opt_g.t = self.opt_g.t;
            m.state.opt_d.t = self.opt_d.t;
        }
        store_moments(&self.opt_g.first, members, |m| &mut m.state.opt_g.first);
        store_moments(&self.opt_g.second, members, |m| &mut m.state.opt_g.second);
        store_moments(&self.opt_d.first, members, |m| &mut m.state.opt_d.first);
        store_moments(&self.opt_d.second, members, |m| &mut m.state.opt_d.second);
    }

    /// Each copy's batch, drawn from its trial's own streams.
    fn batch(&self, members: &mut [&mut Trainer<B>]) -> StackedBatch<Inner<B>> {
        let (mut real, mut z, mut eps) = (Vec::new(), Vec::new(), Vec::new());
        for m in members.iter_mut() {
            let m = &mut **m;
            let h = m.field.host_batch(m.state.step, &mut m.state.streams);
            real.extend(h.real);
            z.extend(h.z);
            eps.extend(h.eps.unwrap_or_default());
        }
        let field = &members[0].field;
        let (t, n) = (members.len(), field.cfg().train.batch);
        let dev = &field.device;
        let like = &self.theta[0];
        let rank3 = |v: Vec<f64>, rows: usize| {
            let cols = v.len() / (t * rows).max(1);
            Tensor::<Inner<B>, 3>::from_data(
                TensorData::new(v, [t, rows, cols]).convert_dtype(like.dtype()),
                (dev, like.dtype()),
            )
        };
        let judged = self.game.judged_rows(n);
        StackedBatch {
            real: rank3(real, n),
            z: rank3(z, n),
            eps: self.game.needs_interpolation().then(|| rank3(eps, judged)),
        }
    }

    /// Each copy's latent rows for a generator update.
    fn latent(&self, members: &mut [&mut Trainer<B>]) -> Tensor<Inner<B>, 3> {
        let mut z = Vec::new();
        for m in members.iter_mut() {
            let m = &mut **m;
            let n = m.cfg().train.batch;
            z.extend(m.field.latent_rows(m.state.step, &mut m.state.streams, n));
        }
        let field = &members[0].field;
        let (t, n, cols) = (members.len(), field.cfg().train.batch, field.latent_cols());
        let like = &self.theta[0];
        Tensor::from_data(
            TensorData::new(z, [t, n, cols]).convert_dtype(like.dtype()),
            (&field.device, like.dtype()),
        )
    }

    fn discriminator_update(&mut self, members: &mut [&mut Trainer<B>]) -> Vec<DStats> {
        let batch = self.batch(members);
        let (stats, grads) = discriminator_gradient::<B>(&self.game, &self.theta, &self.phi, batch);
        self.opt_d.step(&mut self.phi, grads);
        constrain_discriminator(&self.clip, &mut self.phi);
        stats
    }

    fn generator_update(&mut self, members: &mut [&mut Trainer<B>]) -> Vec<GStats> {
        let z = self.latent(members);
        let (stats, grads) = generator_gradient::<B>(&self.game, &self.theta, &self.phi, z);
        self.opt_g.step(&mut self.theta, grads);
        stats
    }

    /// One training step of every member, as its update scheme orders it unbatched; each
    /// member's trial step advances by one.
    pub fn step(&mut self, members: &mut [&mut Trainer<B>]) -> Vec<StepStats> {
        let (d, g) = match self.scheme {
            UpdateScheme::Alternating => {
                let mut d = self.discriminator_update(members);
                for _ in 1..self.n_critic {
                    d = self.discriminator_update(members);
                }
                (d, self.generator_update(members))
            }
            UpdateScheme::AlternatingGFirst => {
                let g = self.generator_update(members);
                let mut d = self.discriminator_update(members);
                for _ in 1..self.n_critic {
                    d = self.discriminator_update(members);
                }
                (d, g)
            }
            // Simultaneous (the group key admits no other scheme).
            _ => {
                for _ in 1..self.n_critic {
                    self.discriminator_update(members);
                }
                let batch = self.batch(members);
                let z = batch.z.clone();
                // Both gradients at the point before the step, on two threads; the updates
                // after, on this one. (Updating each player on its own thread gained nothing
                // on the CPU, and on wgpu it gave the generator wrong parameters: burn's GPU
                // streams are per thread.)
                let (game, theta, phi) = (&self.game, &self.theta, &self.phi);
                let ((d, g_phi), (g, g_theta)) = step_pool().join(
                    || discriminator_gradient::<B>(game, theta, phi, batch),
                    || generator_gradient::<B>(game, theta, phi, z),
                );
                self.opt_d.step(&mut self.phi, g_phi);
                constrain_discriminator(&self.clip, &mut self.phi);
                self.opt_g.step(&mut self.theta, g_theta);
                (d, g)
            }
        };
        for m in members.iter_mut() {
            m.state.step += 1;
        }
        d.into_iter()
            .zip(g)
            .map(|(d, g)| StepStats::of(d, g))
            .collect()
    }
}

/// grad_phi L_D of every copy, with each copy's measurements.
fn discriminator_gradient<B: GanBackend>(
    game: &Game,
    theta: &[Tensor<Inner<B>, 3>],
    phi: &[Tensor<Inner<B>, 3>],
    batch: StackedBatch<Inner<B>>,
) -> (Vec<DStats>, Vec<Tensor<Inner<B>, 3>>) {
    let leaves = lift3::<B>(phi);
    let part: DiscriminatorPart<B, 3> =
        game.discriminator_part(theta, &leaves, &leaves, batch.real, batch.z, batch.eps);
    let copies = theta[0].dims()[0];
    let mut scalars = vec![part.loss, part.d_real, part.d_fake];
    scalars.extend(part.grads.iter().map(copy_sq_norms));
    let v = read(scalars);
    let k = part.grads.len();
    let stats = (0..copies)
        .map(|c| DStats {
            loss_d: v[c],
            d_real: v[copies + c],
            d_fake: v[2 * copies + c],
            grad_sq_d: (0..k).map(|i| v[(3 + i) * copies + c]).collect(),
        })
        .collect();
    (stats, part.grads)
}

/// grad_theta L_G of every copy, with each copy's loss and gradient norms.
fn generator_gradient<B: GanBackend>(
    game: &Game,
    theta: &[Tensor<Inner<B>, 3>],
    phi: &[Tensor<Inner<B>, 3>],
    z: Tensor<Inner<B>, 3>,
) -> (Vec<GStats>, Vec<Tensor<Inner<B>, 3>>) {
    let leaves = lift3::<B>(theta);
    let part: GeneratorPart<B, 3> = game.generator_part(&leaves, &leaves, phi, z);
    let copies = theta[0].dims()[0];
    let mut scalars = vec![part.loss];
    scalars.extend(part.grads.iter().map(copy_sq_norms));
    let v = read(scalars);
    let k = part.grads.len();
    let stats = (0..copies)
        .map(|c| GStats {
            loss_g: v[c],
            grad_sq_g: (0..k).map(|i| v[(1 + i) * copies + c]).collect(),
        })
        .collect();
    (stats, part.grads)
}

/// `wgan_clip`'s bound on every copy's discriminator.
fn constrain_discriminator<B: Backend>(clip: &Option<Vec<Tensor<B, 3>>>, phi: &mut [Tensor<B, 3>]) {
    if let Some(bounds) = clip {
        for (p, c) in phi.iter_mut().zip(bounds) {
            *p = p.clone().max_pair(c.clone().neg()).min_pair(c.clone());
        }
    }
}

/// Stacked parameters as leaves of `B`'s autodiff.
fn lift3<B: GanBackend>(params: &[Tensor<Inner<B>, 3>]) -> Vec<Tensor<B, 3>> {
    params
        .iter()
        .map(|p| Tensor::<B, 3>::from_inner(p.clone()).require_grad())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{CpuF32, CpuF64, CPU, CPU_F32};
    use crate::spec::{
        AdamConfig, DiscriminatorConfig, GeneratorConfig, Regulariser, RmspropConfig, SgdConfig,
    };

    /// Small games of one group: seeds, learning rates, penalty weights and clip values differ.
    fn group_of(loss: Loss, scheme: UpdateScheme, opt: OptimizerConfig) -> Vec<TrialConfig> {
        (0..3)
            .map(|k| {
                let mut c = TrialConfig::default();
                if let GeneratorConfig::Mlp(m) = &mut c.generator {
                    m.width = 8;
                }
                if let DiscriminatorConfig::Mlp(m) = &mut c.discriminator {
                    m.width = 8;
                }
                c.seed = 10 + k as u64;
                c.train.batch = 16;
                c.train.update = scheme;
                c.train.n_critic = 2;
                c.objective.loss = loss;
                c.objective.gp_weight = [1.0, 10.0, 5.0][k];
                c.objective.clip = [0.01, 0.05, 0.1][k];
                if loss == Loss::NonSaturating {
                    c.objective.regulariser = Regulariser::R1;
                    c.objective.reg_weight = [0.5, 2.0, 1.0][k];
                }
                let scale = [1.0, 0.5, 2.0][k];
                let mut o = opt.clone();
                match &mut o {
                    OptimizerConfig::Sgd(s) => s.lr *= scale,
                    OptimizerConfig::Adam(a) => a.lr *= scale,
                    OptimizerConfig::Rmsprop(r) => r.lr *= scale,
                }
                c.train.opt_g = o.clone();
                c.train.opt_d = o;
                c
            })
            .collect()
    }

    /// Each trial's step records and final parameters, trained as one group.
    fn batched<B: GanBackend>(
        cfgs: &[TrialConfig],
        steps: usize,
        dev: &B::Device,
    ) -> anyhow::Result<Vec<(Vec<StepStats>, Vec<f64>)>> {
        let mut trainers: Vec<Trainer<B>> = cfgs
            .iter()
            .map(|c| Trainer::<B>::new(c, dev.clone()))
            .collect::<anyhow::Result<_>>()?;
        let mut members: Vec<&mut Trainer<B>> = trainers.iter_mut().collect();
        let mut group = Group::new(&members)?;
        let mut records = vec![Vec::new(); cfgs.len()];
        for _ in 0..steps {
            for (r, s) in records.iter_mut().zip(group.step(&mut members)) {
                r.push(s);
            }
        }
        group.store(&mut members);
        Ok(records
            .into_iter()
            .zip(trainers.iter())
            .map(|(r, t)| (r, t.flat_parameters()))
            .collect())
    }

    fn alone<B: GanBackend>(
        cfg: &TrialConfig,
        steps: usize,
        dev: &B::Device,
    ) -> anyhow::Result<(Vec<StepStats>, Vec<f64>)> {
        let mut t = Trainer::<B>::new(cfg, dev.clone())?;
        let r = (0..steps).map(|_| t.step()).collect();
        Ok((r, t.flat_parameters()))
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn batched_trials_equal_their_unbatched_runs_to_rounding() -> anyhow::Result<()> {
        let adam = OptimizerConfig::Adam(AdamConfig::default());
        let sgd = OptimizerConfig::Sgd(SgdConfig {
            lr: 0.05,
            momentum: 0.5,
        });
        let rms = OptimizerConfig::Rmsprop(RmspropConfig::default());
        for (loss, scheme, opt) in [
            (Loss::WganGp, UpdateScheme::Simultaneous, adam.clone()),
            (Loss::NonSaturating, UpdateScheme::Alternating, sgd),
            (Loss::WganClip, UpdateScheme::AlternatingGFirst, rms),
            (Loss::Hinge, UpdateScheme::Simultaneous, adam),
        ] {
            let mut cfgs = group_of(loss, scheme, opt);
            for c in &mut cfgs {
                c.precision = crate::spec::Precision::F64;
            }
            let got = batched::<CpuF64>(&cfgs, 8, &CPU)?;
            let mut worst: f64 = 0.0;
            for (cfg, (records, params)) in cfgs.iter().zip(&got) {
                let (want, want_params) = alone::<CpuF64>(cfg, 8, &CPU)?;
                for (a, b) in records.iter().zip(&want) {
                    for (x, y) in [
                        (a.loss_d, b.loss_d),
                        (a.loss_g, b.loss_g),
                        (a.d_real, b.d_real),
                    ]
                    .into_iter()
                    .chain(a.grad_sq_g.iter().copied().zip(b.grad_sq_g.iter().copied()))
                    .chain(a.grad_sq_d.iter().copied().zip(b.grad_sq_d.iter().copied()))
                    {
                        assert!(close(x, y, 1e-9), "{loss:?} {scheme:?}: {x} vs {y}");
                        worst = worst.max((x - y).abs() / (1.0 + x.abs()));
                    }
                }
                for (x, y) in params.iter().zip(&want_params) {
                    assert!(close(*x, *y, 1e-9), "{loss:?} {scheme:?}: {x} vs {y}");
                }
            }
            eprintln!("{loss:?} {scheme:?}: largest relative difference {worst:.2e}");
        }
        Ok(())
    }

    #[test]
    fn a_trial_gives_the_same_bits_whatever_group_it_is_in() -> anyhow::Result<()> {
        let adam = OptimizerConfig::Adam(AdamConfig::default());
        for loss in [Loss::WganGp, Loss::NonSaturating] {
            let cfgs = group_of(loss, UpdateScheme::Simultaneous, adam.clone());
            let three = batched::<CpuF32>(&cfgs, 6, &CPU_F32)?;
            for k in 0..3 {
                let one = batched::<CpuF32>(&cfgs[k..k + 1], 6, &CPU_F32)?;
                assert_eq!(one[0], three[k], "{loss:?}, trial {k}");
            }
            // And in a pair, placed second.
            let pair = batched::<CpuF32>(&[cfgs[2].clone(), cfgs[0].clone()], 6, &CPU_F32)?;
            assert_eq!(pair[1], three[0]);
        }
        Ok(())
    }

    #[test]
    fn the_group_key_admits_what_may_differ_and_nothing_else() {
        let a = TrialConfig::default();
        let mut b = a.clone();
        b.seed = 7;
        b.objective.clip = 0.3;
        b.objective.gp_weight = 3.0;
        if let OptimizerConfig::Adam(c) = &mut b.train.opt_g {
            c.lr = 0.123;
        }
        assert_eq!(group_key(&a), group_key(&b));
        let mut c = a.clone();
        c.train.batch = 17;
        assert_ne!(group_key(&a), group_key(&c));
        let mut d = a.clone();
        d.objective.gp_weight = 0.0;
        assert_ne!(
            group_key(&a),
            group_key(&d),
            "a penalty turned off is another graph"
        );
        let mut e = a.clone();
        e.train.update = UpdateScheme::Extragradient;
        assert!(group_key(&e).unwrap_err().contains("extragradient"));
    }
}
