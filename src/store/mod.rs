//! The study directory (SPEC section 6) and safe writes.
//!
//! Layout under OUT: `experiment.toml` (the file the study came from), `trials.csv`, and per
//! trial `TRIAL/config.toml`, `TRIAL/status.toml`, `TRIAL/metrics.csv`, `TRIAL/modes.csv`.
//! Tables are written to `NAME.partial` while a trial runs and renamed when it ends, and
//! every other file is replaced by rename, so a killed run never leaves a truncated table
//! under a final name.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub mod checkpoint;
pub mod lock;
pub mod npy;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::record::{Checkpoint, ImageQuality, ModeCoverage, PathPoint, ProbeReport, TrialSink};
use crate::spec::TrialConfig;

/// `OUT/README.md`: what the tables hold and the conventions they follow.
pub const STUDY_README: &str = "# ganlab study folder

- `trials.csv`: one row per trial (swept keys, seed, status, steps, diverged_at, final figures).
- `TRIAL/config.toml`: the resolved configuration; `TRIAL/status.toml`: status, versions.
- `TRIAL/metrics.csv`: one row per recorded step, measured before that step's updates.
  Gradient norms are Euclidean (not squared), per player and per parameter tensor, before
  the optimiser step and before weight clipping.
- `TRIAL/modes.csv`: mode coverage on mixtures (nearest mode, high quality within 3 std).
- `TRIAL/quality.csv` (labelled images): `step, classes_covered, classes_total,
  confident_share, reverse_kl, frechet_distance`: the data set's classifier on the generated
  images of the evaluation latents; confident = class probability >= 0.9, a class is covered
  by one confident prediction, `confident_share` in percent, `reverse_kl` = KL(class
  histogram of the confident predictions || uniform), `frechet_distance` = squared Fréchet
  distance between Gaussians of the classifier's 128 features of generated and held-out real
  images (not FID: not Inception's features). trials.csv adds `classifier_accuracy`, the
  classifier's accuracy on the held-out images, and `frechet_floor`, the distance of 2000
  training images to the held-out ones (about the least a generator can reach).
- `TRIAL/grids/`: sample grids (`step-N.png`, 64 images of the first evaluation latents),
  `real.png`, and `trial.gif`, the whole trial as an animation (image data).
- `TRIAL/eigen.csv`: `step, matrix, method, index, re, im, residual`.
- `TRIAL/samples.csv` (2-D mixtures): `step, real, x0, x1`: 256 generated points at every
  mode-coverage step (`real` = 0) and 256 real points once (`real` = 1).
- `TRIAL/path_angle.csv`: `alpha, cosine, norm, norm_g, norm_d` along the line from the first
  to the last point of training.
- `TRIAL/prior_model.toml` (skip-GAN trials with a prior model): what the fit of P measured
  and P's fitted values; the fit's quality is also in trials.csv as `prior_*` columns.
- `TRIAL/checkpoints/step-N.npy`: the parameters after N updates as one f64 vector (theta
  then phi, tensors in order; `numpy.load` reads it): the first and final points and every
  `record.checkpoint_every` steps. `ganlab probe TRIAL --step N` probes one again.
- `*.parquet`: every trial's table of one kind in one file, with a `trial` column first.

Sign convention of `eigen.csv` (matrix = game): the eigenvalues of J = dv/d(theta, phi) for
v = (grad_theta L_G, grad_phi L_D), both players minimising their own loss; the gradient
flow d(theta, phi)/dt = -v is locally stable where every real part is positive. matrix =
hessian_g / hessian_d: eigenvalues of d(grad_theta L_G)/d(theta) and d(grad_phi L_D)/d(phi).
`gd_spectral_radius` in metrics.csv is the spectral radius of I - H J with H = diag(lr_g..,
lr_d..): simultaneous gradient descent converges locally where it is below 1.
";

/// burn's version, recorded with every trial.
pub const BURN_VERSION: &str = "0.21.0";

/// Writes `bytes` to `path` through a temporary file, fsync and a rename, so `path` holds
/// either its old or its new contents, whenever the process dies.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic_at(path, bytes, "write")
}

/// [`write_atomic`], with the crash tests' fault point `fault` half-way through the write
/// (see [`crate::fault`]).
pub(crate) fn write_atomic_at(path: &Path, bytes: &[u8], fault: &str) -> anyhow::Result<()> {
    // A name of this process and call alone: other processes (Slurm array tasks of one
    // study) may be writing the same file at the same moment.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".{}-{n}.tmp~", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let written = (|| {
        let (first, rest) = bytes.split_at(bytes.len() / 2);
        f.write_all(first)?;
        if crate::fault::due(fault) {
            f.sync_all()?;
            crate::fault::die();
        }
        f.write_all(rest)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        // Nothing half-written is left behind (a full disk, say).
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", tmp.display()));
    }
    fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    // The rename itself survives a crash of the machine once the folder is synced.
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Status values of SPEC section 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Done,
    Diverged,
    Failed,
    Running,
    /// Stopped by SIGINT or SIGTERM after saving its state; the next run resumes it.
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Diverged => "diverged",
            Status::Failed => "failed",
            Status::Running => "running",
            Status::Interrupted => "interrupted",
        }
    }
    /// Whether a re-run skips the trial.
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Done | Status::Diverged)
    }
}

/// A final figure of a trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
}

/// `TRIAL/status.toml`: what a trial is, where it got, with which software, where and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialStatus {
    pub status: Status,
    pub seed: u64,
    /// Steps whose updates were applied.
    pub steps: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diverged_at: Option<u64>,
    /// Wall time spent on the trial, over all its runs.
    pub wall_time_s: f64,
    pub ganlab_version: String,
    /// The git commit ganlab was built from, where the build could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    pub burn_version: String,
    pub backend: String,
    pub precision: String,
    /// The device the trial computed on (burn's name for it).
    #[serde(default)]
    pub device: String,
    /// The machine that ran (or is running) the trial.
    #[serde(default)]
    pub host: String,
    /// What computes the probes' dense spectra of 200 rows and more, on how many threads
    /// (`probe.eigen_threads`); absent when the trial has no probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eigen_solver: Option<String>,
    /// When this run of the trial started and ended (RFC 3339, UTC).
    #[serde(default)]
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// The step of the checkpoint this run resumed from, if it resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What happened on the way that a reader should know (a damaged checkpoint skipped, a
    /// restart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The random streams of the trial: each is ChaCha8 seeded with `seed`, on its own stream
    /// number.
    #[serde(default)]
    pub streams: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub finals: Vec<Figure>,
}

/// Now, as RFC 3339 in UTC (milliseconds).
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// This machine's host name ("unknown" where it cannot be read).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match ok && end > 0 {
        true => String::from_utf8_lossy(&buf[..end]).into_owned(),
        false => "unknown".into(),
    }
}

impl TrialStatus {
    /// A status for a trial that is starting.
    pub fn running(cfg: &TrialConfig) -> Self {
        use crate::rng::Stream;
        let streams = Stream::ALL
            .iter()
            .map(|s| {
                (
                    s.name().to_string(),
                    format!("ChaCha8 seed {} stream {}", cfg.seed, *s as u64),
                )
            })
            .collect();
        TrialStatus {
            status: Status::Running,
            seed: cfg.seed,
            steps: 0,
            diverged_at: None,
            wall_time_s: 0.0,
            ganlab_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: option_env!("GANLAB_GIT_COMMIT")
                .filter(|c| !c.is_empty())
                .map(String::from),
            burn_version: BURN_VERSION.into(),
            backend: format!("{:?}", cfg.backend).to_lowercase(),
            precision: format!("{:?}", cfg.precision).to_lowercase(),
            device: String::new(),
            host: host_name(),
            eigen_solver: (cfg.probe.every > 0)
                .then(|| crate::probe::spectrum::large_solver(cfg.probe.eigen_threads)),
            started_at: now(),
            ended_at: None,
            resumed_from: None,
            error: None,
            // Said where `ganlab run` prints it too: these numbers are not the default's.
            notes: (cfg.probe.every > 0)
                .then(|| crate::probe::spectrum::other_eigen_threads(cfg.probe.eigen_threads))
                .flatten()
                .map(|t| {
                    format!(
                        "probe.eigen_threads = {t}: dense spectra of 200 rows and more were \
                         computed on {t} thread(s); their last bits differ from the default's"
                    )
                })
                .into_iter()
                .collect(),
            streams,
            finals: Vec::new(),
        }
    }
}

/// A trial's directory.
#[derive(Debug, Clone)]
pub struct TrialDir {
    pub path: PathBuf,
}

impl TrialDir {
    pub fn new(study_root: &Path, name: &str) -> Self {
        TrialDir {
            path: study_root.join(name),
        }
    }

    /// The recorded configuration, if the directory has one that parses.
    pub fn read_config(&self) -> Option<TrialConfig> {
        let text = fs::read_to_string(self.path.join("config.toml")).ok()?;
        toml::from_str(&text).ok()
    }

    /// The recorded status, if any.
    pub fn read_status(&self) -> Option<TrialStatus> {
        let text = fs::read_to_string(self.path.join("status.toml")).ok()?;
        toml::from_str(&text).ok()
    }

    /// Starts the trial afresh: clears earlier partial tables, writes config and status.
    pub fn start(&self, cfg: &TrialConfig) -> anyhow::Result<()> {
        fs::create_dir_all(&self.path)
            .with_context(|| format!("cannot create {}", self.path.display()))?;
        for name in [
            "metrics.csv",
            "modes.csv",
            "quality.csv",
            "eigen.csv",
            "samples.csv",
            "metrics.csv.partial",
            "modes.csv.partial",
            "quality.csv.partial",
            "eigen.csv.partial",
            "samples.csv.partial",
            "path_angle.csv",
        ] {
            let p = self.path.join(&name);
            if p.exists() {
                fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
        // Checkpoints and probes made from them belong to the earlier run.
        for sub in ["checkpoints", "probes"] {
            let d = self.path.join(sub);
            if d.exists() {
                fs::remove_dir_all(&d).with_context(|| format!("cannot remove {}", d.display()))?;
            }
        }
        let text =
            toml::to_string_pretty(cfg).context("cannot serialise the trial configuration")?;
        write_atomic(&self.path.join("config.toml"), text.as_bytes())?;
        self.write_status(&TrialStatus::running(cfg))
    }

    pub fn write_status(&self, s: &TrialStatus) -> anyhow::Result<()> {
        let text = toml::to_string_pretty(s).context("cannot serialise the trial status")?;
        write_atomic(&self.path.join("status.toml"), text.as_bytes())
    }
}

/// File name of the checkpoint after `step` updates (zero-padded so names sort by step).
pub fn checkpoint_name(step: u64) -> String {
    format!("step-{step:09}.npy")
}

/// File name of the spectral-normalisation vectors beside the checkpoint of `step`.
pub fn spectral_name(step: u64) -> String {
    format!("spectral-{step:09}.npy")
}

/// The checkpoints of a trial directory: (step, path), by step.
pub fn list_checkpoints(trial: &Path) -> Vec<(u64, PathBuf)> {
    files_by_step(trial, "step-", ".npy")
}

/// Files `TRIAL/checkpoints/PREFIX<step>SUFFIX`: (step, path), by step.
pub(crate) fn files_by_step(trial: &Path, prefix: &str, suffix: &str) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = fs::read_dir(trial.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name
                .strip_prefix(prefix)?
                .strip_suffix(suffix)?
                .parse()
                .ok()?;
            Some((step, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Streams a running trial's tables to `NAME.partial` files.
pub struct CsvSink {
    dir: PathBuf,
    /// Values computed in f32 are written with f32's shortest representation.
    single: bool,
    metrics: Option<csv::Writer<BufWriter<File>>>,
    modes: Option<csv::Writer<BufWriter<File>>>,
    quality: Option<csv::Writer<BufWriter<File>>>,
    eigen: Option<csv::Writer<BufWriter<File>>>,
    samples: Option<csv::Writer<BufWriter<File>>>,
}

fn fmt(v: f64) -> String {
    // Rust prints the shortest string that reads back to the same f64; NaN and inf as
    // `NaN` and `inf`, which pandas and polars read.
    v.to_string()
}

fn fmt_in(v: f64, single: bool) -> String {
    if single {
        (v as f32).to_string()
    } else {
        v.to_string()
    }
}

fn writer(path: &Path) -> anyhow::Result<csv::Writer<BufWriter<File>>> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(csv::Writer::from_writer(BufWriter::new(f)))
}

/// The tables a trial streams, by file name.
const TABLES: [&str; 5] = [
    "metrics.csv",
    "modes.csv",
    "quality.csv",
    "eigen.csv",
    "samples.csv",
];

impl CsvSink {
    /// A sink writing into `dir`; `single`: the trial computes in f32.
    pub fn new(dir: &Path, single: bool) -> Self {
        CsvSink {
            dir: dir.to_path_buf(),
            single,
            metrics: None,
            modes: None,
            quality: None,
            eigen: None,
            samples: None,
        }
    }

    fn slot(&mut self, name: &str) -> &mut Option<csv::Writer<BufWriter<File>>> {
        match name {
            "metrics.csv" => &mut self.metrics,
            "modes.csv" => &mut self.modes,
            "quality.csv" => &mut self.quality,
            "eigen.csv" => &mut self.eigen,
            _ => &mut self.samples,
        }
    }

    /// A sink that continues the tables of `dir` where a checkpoint left them: each table is
    /// cut back to the length the checkpoint recorded (rows written after it, and a row cut
    /// short by a kill, go), and a table the checkpoint did not know yet is removed.
    pub fn resume(
        dir: &Path,
        single: bool,
        tables: &checkpoint::TableLengths,
    ) -> anyhow::Result<Self> {
        let mut sink = CsvSink::new(dir, single);
        for name in TABLES {
            let partial = dir.join(format!("{name}.partial"));
            let done = dir.join(name);
            let Some(&len) = tables.get(name) else {
                for p in [&partial, &done] {
                    if p.exists() {
                        fs::remove_file(p)
                            .with_context(|| format!("cannot remove {}", p.display()))?;
                    }
                }
                continue;
            };
            // A kill between the end of the trial's tables and its status leaves them under
            // their final names: they continue as partial tables all the same.
            if !partial.exists() && done.exists() {
                fs::rename(&done, &partial)
                    .with_context(|| format!("cannot rename {}", done.display()))?;
            }
            let mut f = OpenOptions::new()
                .write(true)
                .open(&partial)
                .with_context(|| format!("cannot open {} to resume it", partial.display()))?;
            let have = f.metadata()?.len();
            if have < len {
                anyhow::bail!(
                    "{} holds {have} bytes, fewer than the {len} its checkpoint recorded",
                    partial.display()
                );
            }
            f.set_len(len)
                .and_then(|_| f.seek(SeekFrom::End(0)).map(|_| ()))
                .with_context(|| {
                    format!("cannot cut {} back to its checkpoint", partial.display())
                })?;
            *sink.slot(name) = Some(csv::Writer::from_writer(BufWriter::new(f)));
        }
        Ok(sink)
    }

    /// Flushes every open table to the disk and returns their lengths.
    pub fn sync(&mut self) -> anyhow::Result<checkpoint::TableLengths> {
        let mut lengths = checkpoint::TableLengths::new();
        for name in TABLES {
            if let Some(w) = self.slot(name).as_mut() {
                w.flush()
                    .and_then(|_| w.get_ref().get_ref().sync_data())
                    .with_context(|| format!("cannot write {name}.partial"))?;
                lengths.insert(name.to_string(), w.get_ref().get_ref().metadata()?.len());
            }
        }
        Ok(lengths)
    }

    /// Flushes the tables and gives them their final names.
    pub fn finish(mut self) -> anyhow::Result<()> {
        for name in TABLES {
            if let Some(w) = self.slot(name).take() {
                let inner = w
                    .into_inner()
                    .map_err(|e| anyhow::anyhow!("cannot flush {name}: {}", e.error()))?;
                let file = inner
                    .into_inner()
                    .map_err(|e| anyhow::anyhow!("cannot flush {name}: {}", e.error()))?;
                file.sync_all()?;
                let partial = self.dir.join(format!("{name}.partial"));
                fs::rename(&partial, self.dir.join(name))
                    .with_context(|| format!("cannot rename {}", partial.display()))?;
            }
        }
        Ok(())
    }
}

impl CsvSink {
    /// An error of a table's write, naming the file.
    fn named(&self, table: &str, r: anyhow::Result<()>) -> anyhow::Result<()> {
        r.with_context(|| {
            let p = self.dir.join(format!("{table}.partial"));
            format!("cannot write {}", p.display())
        })
    }

    fn write_metrics_header(&mut self, columns: &[String]) -> anyhow::Result<()> {
        let mut w = writer(&self.dir.join("metrics.csv.partial"))?;
        w.write_record(columns)?;
        self.metrics = Some(w);
        Ok(())
    }

    fn write_metrics_row(&mut self, row: &[f64]) -> anyhow::Result<()> {
        let single = self.single;
        let w = self.metrics.as_mut().context("metrics row before header")?;
        let mut fields = Vec::with_capacity(row.len());
        fields.push((row[0] as u64).to_string());
        fields.extend(row[1..].iter().map(|v| fmt_in(*v, single)));
        if crate::fault::due("table") {
            // The crash tests' kill in the middle of a row: half of it reaches the disk.
            let mut line = csv::Writer::from_writer(Vec::new());
            line.write_record(&fields)?;
            let line = line
                .into_inner()
                .map_err(|e| anyhow::anyhow!("{}", e.error()))?;
            w.flush()?;
            let mut f: &File = w.get_ref().get_ref();
            f.write_all(&line[..line.len() / 2])?;
            f.sync_data()?;
            crate::fault::die();
        }
        w.write_record(&fields)?;
        Ok(())
    }

    fn write_modes_row(&mut self, step: u64, m: &ModeCoverage) -> anyhow::Result<()> {
        if self.modes.is_none() {
            let mut w = writer(&self.dir.join("modes.csv.partial"))?;
            w.write_record([
                "step",
                "modes_covered",
                "modes_total",
                "high_quality",
                "reverse_kl",
                "sample_motion",
            ])?;
            self.modes = Some(w);
        }
        let w = self.modes.as_mut().context("modes writer")?;
        w.write_record([
            step.to_string(),
            m.modes_covered.to_string(),
            m.modes_total.to_string(),
            fmt(m.high_quality),
            fmt(m.reverse_kl),
            fmt(m.sample_motion),
        ])?;
        Ok(())
    }

    fn write_quality_row(&mut self, step: u64, q: &ImageQuality) -> anyhow::Result<()> {
        if self.quality.is_none() {
            let mut w = writer(&self.dir.join("quality.csv.partial"))?;
            w.write_record([
                "step",
                "classes_covered",
                "classes_total",
                "confident_share",
                "reverse_kl",
                "frechet_distance",
            ])?;
            self.quality = Some(w);
        }
        let w = self.quality.as_mut().context("quality writer")?;
        w.write_record([
            step.to_string(),
            q.classes_covered.to_string(),
            q.classes_total.to_string(),
            fmt(q.confident_share),
            fmt(q.reverse_kl),
            fmt(q.frechet_distance),
        ])?;
        Ok(())
    }

    fn write_eigen_rows(&mut self, step: u64, r: &ProbeReport) -> anyhow::Result<()> {
        if self.eigen.is_none() {
            let mut w = writer(&self.dir.join("eigen.csv.partial"))?;
            w.write_record(["step", "matrix", "method", "index", "re", "im", "residual"])?;
            self.eigen = Some(w);
        }
        let w = self.eigen.as_mut().context("eigen writer")?;
        let s = step.to_string();
        // Dense values have no residual: the column is empty for them.
        let res = |v: &[f64], i: usize| v.get(i).map(|x| fmt(*x)).unwrap_or_default();
        for (i, e) in r.game.iter().enumerate() {
            let fields = [
                s.clone(),
                "game".into(),
                r.game_method.into(),
                i.to_string(),
                fmt(e.re),
                fmt(e.im),
                res(&r.game_residuals, i),
            ];
            w.write_record(&fields)?;
        }
        for (name, values, residuals) in [
            ("hessian_g", &r.hessian_g, &r.hessian_g_residuals),
            ("hessian_d", &r.hessian_d, &r.hessian_d_residuals),
        ] {
            for (i, v) in values.iter().enumerate() {
                let fields = [
                    s.clone(),
                    name.into(),
                    r.hessian_method.into(),
                    i.to_string(),
                    fmt(*v),
                    "0".into(),
                    res(residuals, i),
                ];
                w.write_record(&fields)?;
            }
        }
        // The update scheme's matrices (dense probes): its field matrix where it is not J, and
        // its step map.
        if let Some(o) = &r.operator {
            for (name, values) in [("scheme", &o.field), ("step_map", &o.step)] {
                for (i, e) in values.iter().enumerate() {
                    w.write_record([
                        s.clone(),
                        name.into(),
                        "dense".into(),
                        i.to_string(),
                        fmt(e.re),
                        fmt(e.im),
                        String::new(),
                    ])?;
                }
            }
        }
        Ok(())
    }

    /// Writes `TRIAL/grids/NAME`.
    fn write_grid(&self, name: &str, png: &[u8]) -> anyhow::Result<()> {
        let dir = self.dir.join("grids");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        write_atomic(&dir.join(name), png)
    }

    fn write_samples_rows(&mut self, step: u64, real: bool, points: &[f64]) -> anyhow::Result<()> {
        if self.samples.is_none() {
            let mut w = writer(&self.dir.join("samples.csv.partial"))?;
            w.write_record(["step", "real", "x0", "x1"])?;
            self.samples = Some(w);
        }
        let w = self.samples.as_mut().context("samples writer")?;
        let (s, r) = (step.to_string(), if real { "1" } else { "0" });
        for p in points.chunks_exact(2) {
            w.write_record([
                s.clone(),
                r.into(),
                fmt_in(p[0], self.single),
                fmt_in(p[1], self.single),
            ])?;
        }
        Ok(())
    }
}

impl TrialSink for CsvSink {
    fn metrics_header(&mut self, columns: &[String]) -> anyhow::Result<()> {
        let r = self.write_metrics_header(columns);
        self.named("metrics.csv", r)
    }

    fn metrics_row(&mut self, row: &[f64]) -> anyhow::Result<()> {
        let r = self.write_metrics_row(row);
        self.named("metrics.csv", r)
    }

    fn modes_row(&mut self, step: u64, m: &ModeCoverage) -> anyhow::Result<()> {
        let r = self.write_modes_row(step, m);
        self.named("modes.csv", r)
    }

    fn quality_row(&mut self, step: u64, q: &ImageQuality) -> anyhow::Result<()> {
        let r = self.write_quality_row(step, q);
        self.named("quality.csv", r)
    }

    fn eigen_rows(&mut self, step: u64, r: &ProbeReport) -> anyhow::Result<()> {
        let r = self.write_eigen_rows(step, r);
        self.named("eigen.csv", r)
    }

    fn save_state(&mut self, c: &Checkpoint) -> anyhow::Result<()> {
        let tables = self.sync()?;
        checkpoint::save(&self.dir, c, &tables)
    }

    fn checkpoint(&mut self, step: u64, params: &[f64]) -> anyhow::Result<()> {
        let dir = self.dir.join("checkpoints");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        npy::write(&dir.join(checkpoint_name(step)), params, &[params.len()])
    }

    fn spectral_checkpoint(&mut self, step: u64, values: &[f64]) -> anyhow::Result<()> {
        let dir = self.dir.join("checkpoints");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        npy::write(&dir.join(spectral_name(step)), values, &[values.len()])
    }

    fn samples_rows(&mut self, step: u64, real: bool, points: &[f64]) -> anyhow::Result<()> {
        let r = self.write_samples_rows(step, real, points);
        self.named("samples.csv", r)
    }

    fn image_grid(&mut self, step: u64, png: &[u8]) -> anyhow::Result<()> {
        self.write_grid(&crate::report::grid::grid_name(step), png)
    }

    fn real_grid(&mut self, png: &[u8]) -> anyhow::Result<()> {
        self.write_grid(crate::report::grid::REAL, png)
    }

    fn grids_done(&mut self) -> anyhow::Result<()> {
        use crate::report::grid;
        let frames: Vec<PathBuf> = grid::grid_files(&self.dir)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if frames.is_empty() {
            return Ok(());
        }
        let gif = grid::animate(&frames)?;
        write_atomic(&self.dir.join("grids").join(grid::ANIMATION), &gif)
    }

    fn path_angle(&mut self, points: &[PathPoint]) -> anyhow::Result<()> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["alpha", "cosine", "norm", "norm_g", "norm_d"])?;
        for p in points {
            w.write_record([
                fmt(p.alpha),
                fmt(p.cosine),
                fmt(p.norm),
                fmt(p.norm_g),
                fmt(p.norm_d),
            ])?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write path_angle.csv: {}", e.error()))?;
        write_atomic(&self.dir.join("path_angle.csv"), &bytes)
    }
}

/// One row of `trials.csv`.
#[derive(Debug, Clone)]
pub struct TrialRow {
    pub trial: String,
    /// Swept values as written in the experiment file, in the study's key order.
    pub swept: Vec<String>,
    pub status: TrialStatus,
}

/// Writes `trials.csv`: `trial`, the swept keys (but `seed`), `seed`, `status`, `steps`,
/// `diverged_at`, `wall_time_s`, then the final figures (the union over trials, first-seen
/// order; empty where a trial has none).
pub fn write_trials_csv(
    path: &Path,
    swept_keys: &[String],
    rows: &[TrialRow],
) -> anyhow::Result<()> {
    let keep: Vec<usize> = (0..swept_keys.len())
        .filter(|&i| swept_keys[i] != "seed")
        .collect();
    let mut figures: Vec<String> = Vec::new();
    for r in rows {
        for f in &r.status.finals {
            if !figures.contains(&f.name) {
                figures.push(f.name.clone());
            }
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["trial".to_string()];
    header.extend(keep.iter().map(|&i| swept_keys[i].clone()));
    header.extend(["seed", "status", "steps", "diverged_at", "wall_time_s"].map(String::from));
    header.extend(figures.iter().cloned());
    w.write_record(&header)?;
    for r in rows {
        let s = &r.status;
        let mut rec = vec![r.trial.clone()];
        rec.extend(keep.iter().map(|&i| r.swept[i].clone()));
        rec.push(s.seed.to_string());
        rec.push(s.status.as_str().into());
        rec.push(s.steps.to_string());
        rec.push(s.diverged_at.map(|d| d.to_string()).unwrap_or_default());
        rec.push(fmt(s.wall_time_s));
        for name in &figures {
            rec.push(
                s.finals
                    .iter()
                    .find(|f| &f.name == name)
                    .map(|f| fmt(f.value))
                    .unwrap_or_default(),
            );
        }
        w.write_record(&rec)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write trials.csv: {}", e.error()))?;
    write_atomic(path, &bytes)
}
