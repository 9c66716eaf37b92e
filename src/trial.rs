//! One trial from start to end: train, record, detect divergence.

use std::time::Instant;

use crate::backend::GanBackend;

use super::{StepStats, Trainer};
use crate::data::sample_latent;
use crate::nets::Net;
use crate::probe::field::GameField;
use crate::probe::modes::{mode_coverage, ModeCoverage};
use crate::probe::path::{alphas, path_angle, PathPoint};
use crate::probe::{probe_point, ProbeReport};
use crate::rng::{stream, Stream};
use crate::spec::{BackendKind, Loss, Precision, TrialConfig};

/// Where a running trial's records go.
pub trait TrialSink {
    /// Called once, before any row, with the columns of `metrics.csv`.
    fn metrics_header(&mut self, columns: &[String]) -> anyhow::Result<()>;
    /// One row of `metrics.csv`, in header order.
    fn metrics_row(&mut self, row: &[f64]) -> anyhow::Result<()>;
    /// One row of `modes.csv`.
    fn modes_row(&mut self, step: u64, coverage: &ModeCoverage) -> anyhow::Result<()>;
    /// The rows of `eigen.csv` for one probe.
    fn eigen_rows(&mut self, step: u64, report: &ProbeReport) -> anyhow::Result<()>;
    /// `path_angle.csv`: the path-angle profile from the first to the last point of training.
    fn path_angle(&mut self, points: &[PathPoint]) -> anyhow::Result<()>;
    /// Saves the flat parameters (theta then phi) of the point reached after `step` updates.
    fn checkpoint(&mut self, _step: u64, _params: &[f64]) -> anyhow::Result<()> {
        Ok(())
    }
    /// Rows of `samples.csv`: 2-D points (row-major pairs), real ones or generated at `step`.
    fn samples_rows(&mut self, _step: u64, _real: bool, _points: &[f64]) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Points of 2-D data recorded per mode-coverage measurement for the report's sample figures
/// (and as many real points once).
pub const PLOT_SAMPLES: usize = 256;

/// Columns of `metrics.csv` that probes fill (NaN on steps without a probe).
pub const PROBE_COLUMNS: [&str; 10] = [
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
];

fn probe_values(r: Option<&ProbeReport>) -> [f64; 10] {
    let Some(r) = r else { return [f64::NAN; 10] };
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
    ]
}

/// Runs the scheduled probe at the trainer's current point.
fn probe<B: GanBackend>(t: &Trainer<B>, field: &GameField) -> ProbeReport {
    let (g, d) = t.parameter_values();
    let p: Vec<f64> = g.into_iter().chain(d).flatten().collect();
    probe_point(
        field,
        &p,
        &t.cfg.probe,
        t.cfg.seed,
        t.opt_g.lr(),
        t.opt_d.lr(),
    )
}

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Done,
    /// A loss or gradient norm was not finite or exceeded `train.diverge_above`.
    Diverged {
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
    pub wall_time_s: f64,
}

/// Runs a trial on the backend and precision its configuration names.
pub fn run_configured(
    cfg: &TrialConfig,
    sink: &mut dyn TrialSink,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<TrialOutcome> {
    match (cfg.backend, cfg.precision) {
        (BackendKind::Cpu, Precision::F32) => {
            run::<crate::backend::CpuF32>(cfg, crate::backend::CPU_F32, sink, progress)
        }
        (BackendKind::Ndarray, Precision::F32) => {
            run::<crate::backend::NdArrayF32>(cfg, crate::backend::CPU, sink, progress)
        }
        (BackendKind::Cpu | BackendKind::Ndarray, Precision::F64) => {
            run::<crate::backend::CpuF64>(cfg, crate::backend::CPU, sink, progress)
        }
        #[cfg(feature = "cuda")]
        (BackendKind::Cuda, Precision::F32) => {
            run::<burn::backend::Autodiff<crate::backend::Cuda<f32>>>(
                cfg,
                crate::backend::CudaDevice::default(),
                sink,
                progress,
            )
        }
        #[cfg(feature = "cuda")]
        (BackendKind::Cuda, Precision::F64) => {
            run::<burn::backend::Autodiff<crate::backend::Cuda<f64>>>(
                cfg,
                crate::backend::CudaDevice::default(),
                sink,
                progress,
            )
        }
        #[cfg(not(feature = "cuda"))]
        (BackendKind::Cuda, _) => anyhow::bail!("this ganlab was built without the `cuda` feature"),
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
    c.extend(
        t.generator
            .specs
            .iter()
            .map(|s| format!("grad_norm_g/{}", s.name)),
    );
    c.extend(
        t.discriminator
            .specs
            .iter()
            .map(|s| format!("grad_norm_d/{}", s.name)),
    );
    if is_wasserstein(t.cfg.objective.loss) {
        c.push("wasserstein".into());
    }
    c.push("lr_g".into());
    c.push("lr_d".into());
    if is_dirac_game(t) {
        c.push("dist_to_equilibrium".into());
    }
    if t.cfg.probe.every > 0 {
        c.extend(PROBE_COLUMNS.map(String::from));
    }
    c.push("wall_time_s".into());
    c
}

fn is_wasserstein(loss: Loss) -> bool {
    matches!(loss, Loss::WganClip | Loss::WganGp)
}

fn is_dirac_game<B: GanBackend>(t: &Trainer<B>) -> bool {
    matches!(t.game.generator, Net::Constant { .. })
        && matches!(t.game.discriminator, Net::Linear { .. })
}

/// Distance of (theta, psi) to the Dirac-GAN's equilibrium (theta = data point, psi = 0).
fn dist_to_equilibrium<B: GanBackend>(t: &Trainer<B>) -> f64 {
    let at = match &t.cfg.data {
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
    if is_wasserstein(t.cfg.objective.loss) {
        r.push(s.d_real - s.d_fake);
    }
    r.push(t.opt_g.lr());
    r.push(t.opt_d.lr());
    r.extend(dist);
    if t.cfg.probe.every > 0 {
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
fn coverage<B: GanBackend>(t: &Trainer<B>) -> Option<(ModeCoverage, Vec<f64>)> {
    let (centers, std) = t.data.mixture()?;
    let n = t.cfg.record.eval_samples;
    // A fixed evaluation latent set: every measurement of a trial sees the same z.
    let z = sample_latent(
        t.cfg.latent.prior,
        &mut stream(t.cfg.seed, Stream::Eval),
        n,
        t.cfg.latent.dim,
    );
    let x = t.generate(z, n);
    Some((mode_coverage(&x, t.data.dim(), centers, std), x))
}

/// Records a mode-coverage measurement, and for 2-D data the first generated points.
fn record_coverage<B: GanBackend>(
    t: &Trainer<B>,
    step: u64,
    sink: &mut dyn TrialSink,
) -> anyhow::Result<Option<ModeCoverage>> {
    let Some((m, x)) = coverage(t) else {
        return Ok(None);
    };
    sink.modes_row(step, &m)?;
    if t.data.dim() == 2 {
        sink.samples_rows(step, false, &x[..x.len().min(2 * PLOT_SAMPLES)])?;
    }
    Ok(Some(m))
}

/// Trains one trial on backend `B`, sending records to `sink` and step counts to `progress`.
pub fn run<B: GanBackend>(
    cfg: &TrialConfig,
    device: B::Device,
    sink: &mut dyn TrialSink,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<TrialOutcome> {
    let start = Instant::now();
    let mut trainer = Trainer::<B>::new(cfg, device)?;
    let field = if cfg.probe.every > 0 {
        Some(GameField::from_config(cfg, cfg.probe.batch)?)
    } else {
        None
    };
    let columns = metrics_columns(&trainer);
    sink.metrics_header(&columns)?;
    let flat = |t: &Trainer<B>| -> Vec<f64> {
        let (g, d) = t.parameter_values();
        g.into_iter().chain(d).flatten().collect()
    };
    let start_point = flat(&trainer);
    sink.checkpoint(0, &start_point)?;
    let initial_point = field.as_ref().map(|_| start_point);
    let mut last_row: Vec<f64> = Vec::new();
    let mut last_modes = None;
    let mut ending = Ending::Done;
    let mut steps_done = 0;
    let mut unreported = 0;
    if trainer.data.dim() == 2 && trainer.data.mixture().is_some() {
        let real = trainer
            .data
            .sample(&mut stream(cfg.seed, Stream::Plot), PLOT_SAMPLES);
        sink.samples_rows(0, true, &real)?;
    }
    for step in 0..cfg.steps {
        if step % cfg.record.modes_every == 0 {
            if let Some(m) = record_coverage(&trainer, step, sink)? {
                last_modes = Some(m);
            }
        }
        // Row values (dist_to_equilibrium, probes) describe the point before this step's
        // updates.
        let before_dist = is_dirac_game(&trainer).then(|| dist_to_equilibrium(&trainer));
        let probed = match &field {
            Some(f) if step % cfg.probe.every == 0 => {
                let r = probe(&trainer, f);
                sink.eigen_rows(step, &r)?;
                Some(r)
            }
            _ => None,
        };
        let stats = trainer.step();
        let bad = diverged(&stats, cfg.train.diverge_above);
        if bad || probed.is_some() || step % cfg.record.every == 0 || step + 1 == cfg.steps {
            let row = metrics_row(
                &trainer,
                step,
                &stats,
                before_dist,
                probed.as_ref(),
                start.elapsed().as_secs_f64(),
            );
            sink.metrics_row(&row)?;
            last_row = row;
        }
        unreported += 1;
        if unreported == 16 {
            progress(unreported);
            unreported = 0;
        }
        if bad {
            ending = Ending::Diverged { at_step: step };
            break;
        }
        steps_done = step + 1;
        let every = cfg.record.checkpoint_every;
        if every > 0 && steps_done % every == 0 && steps_done < cfg.steps {
            sink.checkpoint(steps_done, &flat(&trainer))?;
        }
    }
    progress(unreported);
    if ending == Ending::Done {
        let end_point = flat(&trainer);
        sink.checkpoint(cfg.steps, &end_point)?;
        if let Some(f) = &field {
            // The point training ended at, and the path to it from the start.
            sink.eigen_rows(cfg.steps, &probe(&trainer, f))?;
            if let Some(p0) = &initial_point {
                sink.path_angle(&path_angle(f, p0, &end_point, &alphas(25)))?;
            }
        }
    }
    if ending == Ending::Done {
        if let Some(m) = record_coverage(&trainer, cfg.steps, sink)? {
            last_modes = Some(m);
        }
    }
    let mut finals: Vec<(String, f64)> = columns
        .iter()
        .zip(&last_row)
        .filter(|(c, _)| {
            !matches!(c.as_str(), "step" | "wall_time_s" | "lr_g" | "lr_d") && !c.contains('/')
        })
        .map(|(c, v)| (c.clone(), *v))
        .collect();
    if is_dirac_game(&trainer) {
        // After the last update, not before it.
        if let Some(f) = finals.iter_mut().find(|(c, _)| c == "dist_to_equilibrium") {
            f.1 = dist_to_equilibrium(&trainer);
        }
    }
    if let Some(m) = last_modes {
        finals.push(("modes_covered".into(), m.modes_covered as f64));
        finals.push(("high_quality".into(), m.high_quality));
        finals.push(("reverse_kl".into(), m.reverse_kl));
    }
    Ok(TrialOutcome {
        ending,
        steps_done,
        finals,
        wall_time_s: start.elapsed().as_secs_f64(),
    })
}
