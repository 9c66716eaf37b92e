//! One trial from start to end: a fresh start or a resume from its last checkpoint, training,
//! records, checkpoints of the trial state, divergence, and its status file.
//!
//! Checkpoints: the trial state (parameters, optimiser moments, stream positions) and the
//! state of the recording are saved every `record.checkpoint_every` steps, every
//! `record.checkpoint_minutes` of wall time, and when training ends (before the final probe).
//! A trial that finds a checkpoint continues from it and ends with the tables an uninterrupted
//! run writes (wall-time columns aside).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::tensor::Tensor;

use crate::backend::{host, GanBackend};
use crate::data::sample_latent;
use crate::game::field::Inner;
use crate::nets::Net;
use crate::probe::modes::{mode_coverage, ModeCoverage};
use crate::probe::path::{alphas, path_angle};
use crate::probe::{probe_point, ProbeReport};
use crate::quality::Classifier;
use crate::record::{Checkpoint, RecordState, TrialSink};
use crate::rng::{stream, Stream};
use crate::setup::TrialSetup;
use crate::spec::{BackendKind, Loss, Precision, TrialConfig};
use crate::store::{checkpoint, CsvSink, Figure, Status, TrialDir, TrialStatus};
use crate::train::state::TrialState;
use crate::train::{StepStats, Trainer};

/// Points of 2-D data recorded per mode-coverage measurement for the report's sample figures
/// (and as many real points once).
pub const PLOT_SAMPLES: usize = 256;

/// Columns of `metrics.csv` that probes fill (NaN on steps without a probe).
pub const PROBE_COLUMNS: [&str; 17] = [
    "eig_max_re",
    "eig_min_re",
    "eig_max_im_over_re",
    "eig_unstable_fraction",
    "gd_spectral_radius",
    "hess_g_min",
    "hess_g_max",
    "hess_d_min",
    "hess_d_max",
    "eig_converged",
    "rotation",
    "sym_min",
    "sym_max",
    "hamiltonian",
    "point_class",
    "scheme_eig_min_re",
    "step_radius",
];

fn probe_values(r: Option<&ProbeReport>) -> [f64; 17] {
    let Some(r) = r else { return [f64::NAN; 17] };
    let ends = |v: &[f64]| {
        (
            v.first().copied().unwrap_or(f64::NAN),
            v.last().copied().unwrap_or(f64::NAN),
        )
    };
    let (gmin, gmax) = ends(&r.hessian_g);
    let (dmin, dmax) = ends(&r.hessian_d);
    let f = &r.figures;
    [
        f.max_re,
        f.min_re,
        f.max_im_over_re,
        f.unstable_fraction,
        r.gd_radius,
        gmin,
        gmax,
        dmin,
        dmax,
        r.converged as f64,
        r.mechanics.rotation,
        r.mechanics.sym_min,
        r.mechanics.sym_max,
        r.mechanics.hamiltonian,
        r.mechanics.class.map_or(f64::NAN, |c| c as u8 as f64),
        // The scheme's field matrix is J itself unless the scheme modifies the field.
        r.operator.as_ref().map_or(f64::NAN, |o| {
            if o.field.is_empty() {
                f.min_re
            } else {
                crate::probe::spectrum::figures(&o.field).min_re
            }
        }),
        r.operator.as_ref().map_or(f64::NAN, |o| o.step_radius),
    ]
}

/// Runs the scheduled probe at the trainer's current point.
fn probe<B: GanBackend>(t: &Trainer<B>) -> ProbeReport {
    let (lr_g, lr_d) = t.learning_rates();
    let cfg = t.cfg();
    probe_point(
        &field_now(t),
        &t.flat_parameters(),
        &cfg.probe,
        cfg.seed,
        &cfg.train,
        lr_g,
        lr_d,
    )
}

/// The probe field at the trainer's step: under annealed instance noise, with that step's
/// noise std.
fn field_now<B: GanBackend>(t: &Trainer<B>) -> crate::probe::field::GameField {
    let setup = t.setup();
    setup
        .field
        .at_noise_std(setup.game.noise_std(t.state.step))
        .with_spectral(crate::train::spectral::vectors(setup, &t.state))
}

/// Under spectral normalisation, the vectors of the trainer's step beside its checkpoint.
fn save_spectral<B: GanBackend>(
    t: &Trainer<B>,
    step: u64,
    sink: &mut dyn TrialSink,
) -> anyhow::Result<()> {
    match crate::train::spectral::host_values(t.setup(), &t.state) {
        Some(v) => sink.spectral_checkpoint(step, &v),
        None => Ok(()),
    }
}

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Done,
    /// A loss or gradient norm was not finite or exceeded `train.diverge_above`.
    Diverged {
        at_step: u64,
    },
    /// A stop was asked for (see `interrupt`); the state after `at_step` steps is saved.
    Interrupted {
        at_step: u64,
    },
}

/// A finished trial's summary.
#[derive(Debug, Clone)]
pub struct TrialOutcome {
    pub ending: Ending,
    /// Steps whose updates were applied.
    pub steps_done: u64,
    /// Final figures for `trials.csv`: the last recorded metrics and the last mode coverage.
    pub finals: Vec<(String, f64)>,
    /// Wall time over all runs of the trial.
    pub wall_time_s: f64,
    /// The device it computed on.
    pub device: String,
}

/// Runs a trial on the backend and precision its configuration names, from its start or from
/// `resume`.
pub fn run_configured(
    setup: TrialSetup,
    sink: &mut dyn TrialSink,
    resume: Option<Checkpoint>,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<TrialOutcome> {
    use crate::backend::{CpuF32, CpuF64, NdArrayF32, CPU, CPU_F32};
    match (setup.cfg.backend, setup.cfg.precision) {
        (BackendKind::Cpu, Precision::F32) => run::<CpuF32>(setup, CPU_F32, sink, resume, progress),
        (BackendKind::Ndarray, Precision::F32) => {
            run::<NdArrayF32>(setup, CPU, sink, resume, progress)
        }
        (BackendKind::Cpu | BackendKind::Ndarray, Precision::F64) => {
            run::<CpuF64>(setup, CPU, sink, resume, progress)
        }
        #[cfg(feature = "cuda")]
        (BackendKind::Cuda, Precision::F32) => {
            run::<burn::backend::Autodiff<crate::backend::Cuda<f32>>>(
                setup,
                crate::backend::CudaDevice::default(),
                sink,
                resume,
                progress,
            )
        }
        #[cfg(feature = "cuda")]
        (BackendKind::Cuda, Precision::F64) => {
            run::<burn::backend::Autodiff<crate::backend::Cuda<f64>>>(
                setup,
                crate::backend::CudaDevice::default(),
                sink,
                resume,
                progress,
            )
        }
        #[cfg(not(feature = "cuda"))]
        (BackendKind::Cuda, _) => anyhow::bail!("this ganlab was built without the `cuda` feature"),
        #[cfg(feature = "wgpu")]
        (BackendKind::Wgpu, _) => run::<burn::backend::Autodiff<crate::backend::Wgpu<f32>>>(
            setup,
            crate::backend::WgpuDevice::default(),
            sink,
            resume,
            progress,
        ),
        #[cfg(not(feature = "wgpu"))]
        (BackendKind::Wgpu, _) => anyhow::bail!("this ganlab was built without the `wgpu` feature"),
    }
}

/// Column names of `metrics.csv` for a trainer.
pub fn metrics_columns<B: GanBackend>(t: &Trainer<B>) -> Vec<String> {
    let mut c: Vec<String> = [
        "step",
        "loss_g",
        "loss_d",
        "d_real",
        "d_fake",
        "grad_norm_g",
        "grad_norm_d",
    ]
    .map(String::from)
    .to_vec();
    let game = &t.setup().game;
    c.extend(
        game.generator
            .param_specs()
            .iter()
            .map(|s| format!("grad_norm_g/{}", s.name)),
    );
    c.extend(
        game.discriminator
            .param_specs()
            .iter()
            .map(|s| format!("grad_norm_d/{}", s.name)),
    );
    if is_wasserstein(t.cfg().objective.loss) {
        c.push("wasserstein".into());
    }
    c.push("lr_g".into());
    c.push("lr_d".into());
    if t.learned_alpha().is_some() {
        c.push("skip_alpha".into());
    }
    if is_dirac_game(t) {
        c.push("dist_to_equilibrium".into());
    }
    if is_flow(t.cfg()) {
        c.extend(FLOW_COLUMNS.map(String::from));
    }
    if t.cfg().record.drift {
        c.push("drift".into());
    }
    if t.cfg().probe.every > 0 {
        c.extend(PROBE_COLUMNS.map(String::from));
    }
    c.push("wall_time_s".into());
    c
}

/// Columns of `metrics.csv` for the schemes that integrate the gradient flow: the step's start
/// time, its size, and the attempts the error control rejected before it.
pub const FLOW_COLUMNS: [&str; 3] = ["flow_time", "flow_step_size", "flow_rejected"];

fn is_flow(cfg: &TrialConfig) -> bool {
    matches!(
        cfg.train.update,
        crate::spec::UpdateScheme::Rk4 | crate::spec::UpdateScheme::Rk45
    )
}

fn is_wasserstein(loss: Loss) -> bool {
    matches!(loss, Loss::WganClip | Loss::WganGp)
}

fn is_dirac_game<B: GanBackend>(t: &Trainer<B>) -> bool {
    let game = &t.setup().game;
    matches!(game.generator, Net::Constant { .. })
        && matches!(game.discriminator, Net::Linear { .. })
}

/// Distance of (theta, psi) to the Dirac-GAN's equilibrium (theta = data point, psi = 0).
fn dist_to_equilibrium<B: GanBackend>(t: &Trainer<B>) -> f64 {
    let at = match &t.cfg().data {
        crate::spec::DataConfig::Dirac(d) => d.at,
        _ => 0.0,
    };
    let (g, d) = t.parameter_values();
    let theta: f64 = g.iter().flatten().map(|v| (v - at) * (v - at)).sum();
    let psi: f64 = d.iter().flatten().map(|v| v * v).sum();
    (theta + psi).sqrt()
}

fn metrics_row<B: GanBackend>(
    t: &Trainer<B>,
    step: u64,
    s: &StepStats,
    alpha: Option<f64>,
    dist: Option<f64>,
    probed: Option<&ProbeReport>,
    wall: f64,
) -> Vec<f64> {
    let mut r = vec![
        step as f64,
        s.loss_g,
        s.loss_d,
        s.d_real,
        s.d_fake,
        s.grad_sq_g.iter().sum::<f64>().sqrt(),
        s.grad_sq_d.iter().sum::<f64>().sqrt(),
    ];
    r.extend(s.grad_sq_g.iter().map(|v| v.sqrt()));
    r.extend(s.grad_sq_d.iter().map(|v| v.sqrt()));
    if is_wasserstein(t.cfg().objective.loss) {
        r.push(s.d_real - s.d_fake);
    }
    let (lr_g, lr_d) = t.learning_rates();
    r.push(lr_g);
    r.push(lr_d);
    r.extend(alpha);
    r.extend(dist);
    if is_flow(t.cfg()) {
        let f = s.flow.unwrap_or(crate::train::FlowStats {
            time: f64::NAN,
            step_size: f64::NAN,
            rejected: 0,
        });
        r.extend([f.time, f.step_size, f.rejected as f64]);
    }
    if t.cfg().record.drift {
        r.push(s.drift.unwrap_or(f64::NAN));
    }
    if t.cfg().probe.every > 0 {
        r.extend(probe_values(probed));
    }
    r.push(wall);
    r
}

fn diverged(s: &StepStats, limit: f64) -> bool {
    let bad = |v: f64| !v.is_finite() || v.abs() > limit;
    bad(s.loss_g)
        || bad(s.loss_d)
        || s.grad_sq_g
            .iter()
            .chain(&s.grad_sq_d)
            .any(|v| !v.is_finite())
}

/// Mode coverage on the fixed evaluation latent set (mixtures only), with the generated
/// points it was measured on.
fn coverage<B: GanBackend>(t: &Trainer<B>) -> Option<(ModeCoverage, Vec<f64>, f64)> {
    let data = &t.setup().data;
    let cfg = t.cfg();
    let (centers, std) = data.mixture()?;
    let n = cfg.record.eval_samples;
    // A fixed evaluation latent set: every measurement of a trial sees the same z.
    let z = sample_latent(&cfg.latent, &mut stream(cfg.seed, Stream::Eval), n);
    let x = t.generate(z, n);
    Some((mode_coverage(&x, data.dim(), centers, std), x, std))
}

/// Records a mode-coverage measurement, and for 2-D data the first generated points.
fn record_coverage<B: GanBackend>(
    t: &Trainer<B>,
    step: u64,
    sink: &mut dyn TrialSink,
    rec: &mut RecordState,
) -> anyhow::Result<Option<ModeCoverage>> {
    let Some((mut m, x, std)) = coverage(t) else {
        return Ok(None);
    };
    let dim = t.setup().data.dim();
    if let Some(before) = &rec.last_eval {
        use crate::probe::modes::{quality_radius, sample_motion};
        m.sample_motion = sample_motion(before, &x, dim) / quality_radius(std);
    }
    sink.modes_row(step, &m)?;
    if t.setup().data.dim() == 2 {
        sink.samples_rows(step, false, &x[..x.len().min(2 * PLOT_SAMPLES)])?;
    }
    rec.last_eval = Some(x);
    Ok(Some(m))
}

/// The classifier that measures a trial's image sample quality (labelled image data with
/// `record.image_quality`), trained once per data set and cached (see `quality::cache`).
pub fn judge_of(cfg: &TrialConfig) -> anyhow::Result<Option<Arc<Classifier>>> {
    match &cfg.data {
        crate::spec::DataConfig::Images(d) if cfg.record.image_quality => {
            crate::quality::cache::obtain(d)
        }
        _ => Ok(None),
    }
}

/// Records an image-quality measurement on the generated images of the evaluation latents
/// (the fixed set mode coverage uses).
fn record_quality<B: GanBackend>(
    t: &Trainer<B>,
    judge: Option<&Classifier>,
    step: u64,
    sink: &mut dyn TrialSink,
    rec: &mut RecordState,
) -> anyhow::Result<()> {
    let Some(judge) = judge else { return Ok(()) };
    let cfg = t.cfg();
    let n = cfg.record.eval_samples;
    let z = sample_latent(&cfg.latent, &mut stream(cfg.seed, Stream::Eval), n);
    let q = crate::quality::measure(judge, &t.generate(z, n));
    sink.quality_row(step, &q)?;
    rec.last_quality = Some(q);
    Ok(())
}

/// Saves the sample grid of an image trial: the generator's images of the first evaluation
/// latents (the same z at every measurement).
fn record_grid<B: GanBackend>(
    t: &Trainer<B>,
    step: u64,
    sink: &mut dyn TrialSink,
) -> anyhow::Result<()> {
    use crate::report::grid::{grid_png, GRID_IMAGES};
    let Some(shape) = t.setup().data.image_shape() else {
        return Ok(());
    };
    let cfg = t.cfg();
    let z = sample_latent(
        &cfg.latent,
        &mut stream(cfg.seed, Stream::Eval),
        GRID_IMAGES,
    );
    let x = t.generate(z, GRID_IMAGES);
    sink.image_grid(step, &grid_png(&x, shape, 8)?)
}

/// Trains one trial on backend `B` from its start or from `resume`, sending records to `sink`
/// and step counts to `progress`.
pub fn run<B: GanBackend>(
    setup: TrialSetup,
    device: B::Device,
    sink: &mut dyn TrialSink,
    resume: Option<Checkpoint>,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<TrialOutcome> {
    let mut run = TrialRun::<B>::open(setup, device, sink, resume, progress)?;
    while run.running() {
        if !run.before_step(sink, crate::interrupt::requested())? {
            break;
        }
        let stats = run.trainer.step();
        run.after_step(stats, sink, progress)?;
    }
    run.finish(sink, progress)
}

/// A trial between its start and its end: the trainer, and the records around its steps. The
/// loop is the caller's ([`run`] for one trial, `batch::lockstep` for trials trained as
/// one model): [`TrialRun::before_step`], the step, [`TrialRun::after_step`], until
/// [`TrialRun::running`] says the trial ended, then [`TrialRun::finish`].
pub struct TrialRun<B: GanBackend> {
    pub trainer: Trainer<B>,
    cfg: TrialConfig,
    judge: Option<Arc<Classifier>>,
    columns: Vec<String>,
    rec: RecordState,
    start: Instant,
    wall_before: f64,
    state_interval: Duration,
    last_state_save: Instant,
    ending: Option<Ending>,
    unreported: u64,
    /// The step about to be taken, and what was measured before it.
    step: u64,
    before_dist: Option<f64>,
    /// Whether the generator has a learned alpha (`skip_alpha` column), decided once.
    learns_alpha: bool,
    /// The learned alpha before this step's updates, kept on its device until a row needs it.
    before_alpha: Option<Tensor<Inner<B>, 2>>,
    probed: Option<ProbeReport>,
}

impl<B: GanBackend> TrialRun<B> {
    /// Starts the trial, or resumes it from `resume`: the records of its initial point, or
    /// the trial state and records of the checkpoint.
    pub fn open(
        setup: TrialSetup,
        device: B::Device,
        sink: &mut dyn TrialSink,
        resume: Option<Checkpoint>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<TrialRun<B>> {
        let start = Instant::now();
        let cfg = setup.cfg.clone();
        let judge = judge_of(&cfg)?;
        let mut trainer = Trainer::<B>::from_setup(setup, device.clone());
        let columns = metrics_columns(&trainer);
        let rec = match resume {
            Some(c) => {
                trainer.state = TrialState::restore(trainer.setup(), &c.trainer, &device)?;
                progress(trainer.state.step);
                c.records
            }
            None => {
                sink.metrics_header(&columns)?;
                let start_point = trainer.flat_parameters();
                sink.checkpoint(0, &start_point)?;
                save_spectral(&trainer, 0, sink)?;
                let data = &trainer.setup().data;
                if data.dim() == 2 && data.mixture().is_some() {
                    let real = data.sample(&mut stream(cfg.seed, Stream::Plot), PLOT_SAMPLES);
                    sink.samples_rows(0, true, &real)?;
                }
                if let Some(shape) = data.image_shape() {
                    use crate::report::grid::{grid_png, GRID_IMAGES};
                    let real = data.sample(&mut stream(cfg.seed, Stream::Plot), GRID_IMAGES);
                    sink.real_grid(&grid_png(&real, shape, 8)?)?;
                }
                RecordState {
                    initial_point: (cfg.probe.every > 0).then_some(start_point),
                    ..RecordState::default()
                }
            }
        };
        let learns_alpha = trainer.learned_alpha().is_some();
        Ok(TrialRun {
            step: trainer.state.step,
            trainer,
            judge,
            columns,
            wall_before: rec.wall_time_s,
            rec,
            start,
            state_interval: Duration::from_secs_f64(cfg.record.checkpoint_minutes * 60.0),
            last_state_save: Instant::now(),
            ending: None,
            unreported: 0,
            before_dist: None,
            learns_alpha,
            before_alpha: None,
            probed: None,
            cfg,
        })
    }

    fn wall(&self) -> f64 {
        self.wall_before + self.start.elapsed().as_secs_f64()
    }

    /// The step the trial takes next.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Whether the trial has steps left to take.
    pub fn running(&self) -> bool {
        self.ending.is_none() && self.step < self.cfg.steps
    }

    /// Whether [`TrialRun::before_step`] reads the trial state (measurements of the point,
    /// probes, a saved state on a stop), given whether a stop was asked for.
    pub fn needs_state_before(&self, interrupted: bool) -> bool {
        let step = self.step;
        interrupted
            || step % self.cfg.record.modes_every == 0
            || (self.cfg.probe.every > 0 && step % self.cfg.probe.every == 0)
            || is_dirac_game(&self.trainer)
    }

    /// What comes before a step: on a stop asked for, the state is saved and the trial ends
    /// (`false`); else the scheduled measurements of the point before the step.
    pub fn before_step(
        &mut self,
        sink: &mut dyn TrialSink,
        interrupted: bool,
    ) -> anyhow::Result<bool> {
        let step = self.step;
        if interrupted {
            self.rec.wall_time_s = self.wall();
            let c = Checkpoint {
                trainer: self.trainer.state.save(self.trainer.setup()),
                records: self.rec.clone(),
            };
            sink.save_state(&c)?;
            self.ending = Some(Ending::Interrupted { at_step: step });
            return Ok(false);
        }
        let t = &self.trainer;
        if step % self.cfg.record.modes_every == 0 {
            if let Some(m) = record_coverage(t, step, sink, &mut self.rec)? {
                self.rec.last_modes = Some(m);
            }
            record_quality(t, self.judge.as_deref(), step, sink, &mut self.rec)?;
            record_grid(t, step, sink)?;
        }
        // Row values (dist_to_equilibrium, probes) describe the point before this step's
        // updates.
        self.before_dist = is_dirac_game(t).then(|| dist_to_equilibrium(t));
        if self.learns_alpha {
            self.before_alpha = t.learned_alpha();
        }
        self.probed =
            (self.cfg.probe.every > 0 && step % self.cfg.probe.every == 0).then(|| probe(t));
        if let Some(r) = &self.probed {
            sink.eigen_rows(step, r)?;
        }
        Ok(true)
    }

    /// Whether [`TrialRun::after_step`] reads the trial state after a step with `stats`
    /// (checkpoints, the trial's end).
    pub fn needs_state_after(&self, stats: &StepStats) -> bool {
        let steps_done = self.step + 1;
        let every = self.cfg.record.checkpoint_every;
        let timed = self.cfg.record.checkpoint_minutes > 0.0
            && self.last_state_save.elapsed() >= self.state_interval;
        diverged(stats, self.cfg.train.diverge_above)
            || (every > 0 && steps_done % every == 0)
            || timed
            || steps_done == self.cfg.steps
            || is_dirac_game(&self.trainer)
    }

    /// What comes after a step: its metrics row, divergence, checkpoints.
    pub fn after_step(
        &mut self,
        stats: StepStats,
        sink: &mut dyn TrialSink,
        progress: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<()> {
        crate::fault::point("step");
        let (step, cfg) = (self.step, &self.cfg);
        let bad = diverged(&stats, cfg.train.diverge_above);
        let probed = self.probed.take();
        if bad || probed.is_some() || step % cfg.record.every == 0 || step + 1 == cfg.steps {
            let row = metrics_row(
                &self.trainer,
                step,
                &stats,
                self.before_alpha
                    .take()
                    .and_then(|a| host(a).first().copied()),
                self.before_dist,
                probed.as_ref(),
                self.wall(),
            );
            sink.metrics_row(&row)?;
            self.rec.last_row = row;
        }
        self.unreported += 1;
        if self.unreported == 16 {
            progress(self.unreported);
            self.unreported = 0;
        }
        if bad {
            self.ending = Some(Ending::Diverged { at_step: step });
            return Ok(());
        }
        let steps_done = step + 1;
        self.step = steps_done;
        let every = cfg.record.checkpoint_every;
        let scheduled = every > 0 && steps_done % every == 0;
        if scheduled && steps_done < cfg.steps {
            sink.checkpoint(steps_done, &self.trainer.flat_parameters())?;
            save_spectral(&self.trainer, steps_done, sink)?;
        }
        let timed = cfg.record.checkpoint_minutes > 0.0
            && self.last_state_save.elapsed() >= self.state_interval;
        if scheduled || timed || steps_done == cfg.steps {
            self.rec.wall_time_s = self.wall();
            let c = Checkpoint {
                trainer: self.trainer.state.save(self.trainer.setup()),
                records: self.rec.clone(),
            };
            sink.save_state(&c)?;
            self.last_state_save = Instant::now();
        }
        Ok(())
    }

    /// The end of the trial: the final records of a finished one, and its summary.
    pub fn finish(
        self,
        sink: &mut dyn TrialSink,
        progress: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<TrialOutcome> {
        let TrialRun {
            trainer,
            cfg,
            judge,
            columns,
            mut rec,
            unreported,
            ending,
            wall_before,
            start,
            ..
        } = self;
        let ending = ending.unwrap_or(Ending::Done);
        let wall = || wall_before + start.elapsed().as_secs_f64();
        let device = trainer.field.device.clone();
        progress(unreported);
        let steps_done = match ending {
            Ending::Done => cfg.steps,
            Ending::Diverged { at_step } | Ending::Interrupted { at_step } => at_step,
        };
        let mut final_probe = None;
        if ending == Ending::Done {
            let end_point = trainer.flat_parameters();
            sink.checkpoint(cfg.steps, &end_point)?;
            save_spectral(&trainer, cfg.steps, sink)?;
            if cfg.probe.every > 0 {
                // The point training ended at, and the path to it from the start.
                let report = probe(&trainer);
                sink.eigen_rows(cfg.steps, &report)?;
                final_probe = Some(probe_values(Some(&report)));
                if let Some(p0) = &rec.initial_point {
                    let field = &field_now(&trainer);
                    sink.path_angle(&path_angle(field, p0, &end_point, &alphas(25)))?;
                }
            }
            if let Some(m) = record_coverage(&trainer, cfg.steps, sink, &mut rec)? {
                rec.last_modes = Some(m);
            }
            record_quality(&trainer, judge.as_deref(), cfg.steps, sink, &mut rec)?;
            record_grid(&trainer, cfg.steps, sink)?;
        }
        if !matches!(ending, Ending::Interrupted { .. }) {
            sink.grids_done()?;
        }
        let mut finals: Vec<(String, f64)> = columns
            .iter()
            .zip(&rec.last_row)
            .filter(|(c, _)| {
                !matches!(c.as_str(), "step" | "wall_time_s" | "lr_g" | "lr_d") && !c.contains('/')
            })
            .map(|(c, v)| (c.clone(), *v))
            .collect();
        if let Some(values) = final_probe {
            // The spectrum's figures of the point training ended at (the last metrics row is
            // the point before the last update, probed only when a probe step falls there).
            for (name, v) in PROBE_COLUMNS.iter().zip(values) {
                if let Some(f) = finals.iter_mut().find(|(c, _)| c == name) {
                    f.1 = v;
                }
            }
        }
        if is_dirac_game(&trainer) {
            // After the last update, not before it.
            if let Some(f) = finals.iter_mut().find(|(c, _)| c == "dist_to_equilibrium") {
                f.1 = dist_to_equilibrium(&trainer);
            }
        }
        if let Some(m) = rec.last_modes {
            finals.push(("modes_covered".into(), m.modes_covered as f64));
            finals.push(("high_quality".into(), m.high_quality));
            finals.push(("reverse_kl".into(), m.reverse_kl));
            finals.push(("sample_motion".into(), m.sample_motion));
        }
        if let Some(q) = rec.last_quality {
            finals.push(("classes_covered".into(), q.classes_covered as f64));
            finals.push(("confident_share".into(), q.confident_share));
            finals.push(("class_reverse_kl".into(), q.reverse_kl));
            finals.push(("frechet_distance".into(), q.frechet_distance));
        }
        if let Some(j) = &judge {
            finals.push(("classifier_accuracy".into(), j.report.test_accuracy));
            finals.push(("frechet_floor".into(), j.report.frechet_floor));
        }
        Ok(TrialOutcome {
            ending,
            steps_done,
            finals,
            wall_time_s: wall(),
            device: format!("{device:?}"),
        })
    }
}

/// Opens a trial folder for a run: resumes from the newest checkpoint that checks (and whose
/// tables can be cut back to it), else starts the trial afresh. Notes in `status` say which
/// checkpoints were skipped and why.
pub(crate) fn open(
    dir: &TrialDir,
    cfg: &TrialConfig,
    restart: bool,
    status: &mut TrialStatus,
) -> anyhow::Result<(CsvSink, Option<Checkpoint>)> {
    let single = cfg.precision == Precision::F32;
    if !restart && dir.path.join("config.toml").exists() {
        let loaded = checkpoint::load_newest(&dir.path);
        for r in &loaded.rejected {
            status
                .notes
                .push(format!("skipped a damaged checkpoint: {r}"));
        }
        match loaded.checkpoint {
            Some((c, tables, path)) => match CsvSink::resume(&dir.path, single, &tables) {
                Ok(sink) => {
                    status.resumed_from = Some(c.trainer.step);
                    dir.write_status(status)?;
                    return Ok((sink, Some(c)));
                }
                Err(e) => status.notes.push(format!(
                    "cannot resume from {}: {e:#}; the trial starts again",
                    path.display()
                )),
            },
            None if !loaded.rejected.is_empty() => status
                .notes
                .push("no usable checkpoint; the trial starts again".into()),
            None => {}
        }
    }
    dir.start(cfg)?;
    dir.write_status(status)?;
    Ok((CsvSink::new(&dir.path, single), None))
}

/// Runs one trial in its folder, resuming it where it was unless `restart`. Any error or panic
/// inside becomes a `failed` status, so the sweep goes on.
pub fn run_in_dir(
    dir: &TrialDir,
    cfg: &TrialConfig,
    restart: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> TrialStatus {
    let mut status = TrialStatus::running(cfg);
    let result = (|| {
        let (mut sink, resume) = open(dir, cfg, restart, &mut status)?;
        // The set-up (a prior model's fit included) runs inside too: a panic there fails
        // this trial, not the study.
        let (mut outcome, prior_figures) = catch_unwind(AssertUnwindSafe(|| {
            let setup = TrialSetup::new(cfg)?;
            if let Some(p) = &setup.prior {
                let path = dir.path.join("prior_model.toml");
                crate::store::write_atomic(&path, p.to_toml().as_bytes())?;
            }
            let prior_figures: Vec<(String, f64)> = setup
                .prior
                .iter()
                .flat_map(|p| {
                    p.report
                        .quality
                        .iter()
                        .map(|(k, v)| (format!("prior_{k}"), *v))
                })
                .collect();
            let outcome = run_configured(setup, &mut sink, resume, progress)?;
            Ok::<_, anyhow::Error>((outcome, prior_figures))
        }))
        .map_err(panic_error)??;
        // The prior model's fit quality, beside the trial's final figures in trials.csv.
        outcome.finals.extend(prior_figures);
        close_tables(sink, &outcome)?;
        Ok::<_, anyhow::Error>(outcome)
    })();
    settle(dir, status, result)
}

/// Closes a trial's tables after its run: final, or (interrupted) left `.partial` for the run
/// that resumes it.
pub(crate) fn close_tables(mut sink: CsvSink, outcome: &TrialOutcome) -> anyhow::Result<()> {
    match outcome.ending {
        Ending::Interrupted { .. } => drop(sink.sync()?),
        _ => sink.finish()?,
    }
    Ok(())
}

/// A panic's message, as a trial's error.
pub(crate) fn panic_error(p: Box<dyn std::any::Any + Send>) -> anyhow::Error {
    anyhow::anyhow!(
        "internal error: {}",
        crate::error::panic_message(p.as_ref())
    )
}

/// A trial's status after its run (its outcome, or the error that failed it), written to its
/// folder.
pub(crate) fn settle(
    dir: &TrialDir,
    mut status: TrialStatus,
    result: anyhow::Result<TrialOutcome>,
) -> TrialStatus {
    match result {
        Ok(o) => {
            status.status = match o.ending {
                Ending::Done => Status::Done,
                Ending::Diverged { .. } => Status::Diverged,
                Ending::Interrupted { .. } => Status::Interrupted,
            };
            status.diverged_at = match o.ending {
                Ending::Diverged { at_step } => Some(at_step),
                _ => None,
            };
            status.steps = o.steps_done;
            status.wall_time_s = o.wall_time_s;
            status.device = o.device;
            status.finals = o
                .finals
                .into_iter()
                .map(|(name, value)| Figure { name, value })
                .collect();
        }
        Err(e) => {
            status.status = Status::Failed;
            status.error = Some(format!("{e:#}"));
        }
    }
    status.ended_at = Some(crate::store::now());
    if let Err(e) = dir.write_status(&status) {
        status.status = Status::Failed;
        let earlier = status
            .error
            .take()
            .map(|m| format!("{m}; then "))
            .unwrap_or_default();
        status.error = Some(format!("{earlier}cannot write status: {e:#}"));
    }
    status
}
