//! Probing a trial again after training, from its recorded configuration and checkpoints
//! (`ganlab probe`). The probe batch comes from the trial's own `Probe` stream, so a
//! checkpoint probed again gives the numbers the trial recorded at that step.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::probe::path::{alphas, path_angle};
use crate::probe::{jacobian, probe_point, ProbeReport};
use crate::record::TrialSink;
use crate::setup::TrialSetup;
use crate::spec::TrialConfig;
use crate::store::{list_checkpoints, npy, CsvSink};

/// Power-iteration steps for a saved trial's spectral normalisation (see `field_at`).
pub const SPECTRAL_ITERATIONS: usize = 200;

/// A trial folder opened for probing.
pub struct SavedTrial {
    pub dir: PathBuf,
    pub config: TrialConfig,
    /// The trial's data, game and probe batch, as training built them.
    pub setup: TrialSetup,
    /// (step, file) of every checkpoint, by step.
    pub checkpoints: Vec<(u64, PathBuf)>,
}

impl SavedTrial {
    /// Opens `dir` (a trial folder with `config.toml` and `checkpoints/`).
    pub fn open(dir: &Path) -> anyhow::Result<SavedTrial> {
        let cfg_path = dir.join("config.toml");
        let text = std::fs::read_to_string(&cfg_path).with_context(|| {
            format!(
                "{}: cannot read it; `ganlab probe` takes a trial folder (one holding \
                 config.toml and checkpoints/)",
                cfg_path.display()
            )
        })?;
        let config: TrialConfig = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", cfg_path.display(), e.message()))?;
        // As strictly as an experiment file: a hand-edited config.toml must not reach burn.
        if let Err((key, msg)) = crate::spec::validate::check(&config) {
            let line = crate::spec::line_of(&text, &key)
                .map(|l| format!(":{l}"))
                .unwrap_or_default();
            anyhow::bail!("{}{line}: key `{key}`: {msg}", cfg_path.display());
        }
        let checkpoints = list_checkpoints(dir);
        if checkpoints.is_empty() {
            anyhow::bail!(
                "{}: no checkpoints (checkpoints/step-N.npy); trials record them from this \
                 version of ganlab on",
                dir.display()
            );
        }
        let setup = TrialSetup::new(&config)?;
        Ok(SavedTrial {
            dir: dir.to_path_buf(),
            config,
            setup,
            checkpoints,
        })
    }

    /// The steps that have checkpoints.
    pub fn steps(&self) -> Vec<u64> {
        self.checkpoints.iter().map(|c| c.0).collect()
    }

    /// The parameters saved after `step` updates (None: the last checkpoint).
    pub fn point(&self, step: Option<u64>) -> anyhow::Result<(u64, Vec<f64>)> {
        let found = match step {
            None => self.checkpoints.last(),
            Some(s) => self.checkpoints.iter().find(|c| c.0 == s),
        };
        let Some((s, path)) = found else {
            anyhow::bail!(
                "{}: no checkpoint at step {}; there are: {:?}",
                self.dir.display(),
                step.unwrap_or_default(),
                self.steps()
            );
        };
        let (shape, p) = npy::read(path)?;
        let n = self.setup.field.dims().2;
        if shape != [n] {
            anyhow::bail!(
                "{}: holds shape {shape:?}, the trial's game has {n} parameters",
                path.display()
            );
        }
        if let Some(i) = p.iter().position(|v| !v.is_finite()) {
            anyhow::bail!(
                "{}: parameter {i} is {} (the point is not finite): a diverged point has no \
                 spectrum to probe",
                path.display(),
                p[i]
            );
        }
        Ok((*s, p))
    }

    /// The probe field at `step`, parameters `p` (with that step's instance-noise std, as
    /// training probed). Under spectral normalisation it normalises with the vectors saved
    /// beside the checkpoint (`checkpoints/spectral-N.npy`), as training probed; a checkpoint
    /// without them (copied without that file) gets the vectors iterated
    /// [`SPECTRAL_ITERATIONS`] times on its weights (the top singular pair, which training's
    /// one step per update tracks).
    fn field_at(&self, step: u64, p: &[f64]) -> anyhow::Result<crate::probe::field::GameField> {
        let s = &self.setup;
        let f = &s.field;
        let saved = self
            .dir
            .join("checkpoints")
            .join(crate::store::spectral_name(step));
        if s.game.objective.spectral_norm && saved.exists() {
            let (_, values) = npy::read(&saved)?;
            let vectors = crate::train::spectral::from_host_values(s, &values)
                .with_context(|| format!("{}", saved.display()))?;
            return Ok(f
                .at_noise_std(s.game.noise_std(step))
                .with_spectral(Some(vectors)));
        }
        Ok(self.field_iterated(step, p))
    }

    /// [`SavedTrial::field_at`] with vectors iterated on the checkpoint's weights.
    fn field_iterated(&self, step: u64, p: &[f64]) -> crate::probe::field::GameField {
        type Plain = crate::train::Inner<crate::backend::CpuF64>;
        let s = &self.setup;
        let f = &s.field;
        let mut at = f.dims().0;
        let phi: Vec<burn::tensor::Tensor<Plain, 2>> = f
            .phi
            .iter()
            .map(|spec| {
                at += spec.len();
                crate::backend::matrix::<Plain>(
                    p[at - spec.len()..at].to_vec(),
                    spec.rows,
                    spec.cols,
                    &crate::backend::CPU,
                )
            })
            .collect();
        f.at_noise_std(s.game.noise_std(step)).with_spectral(
            crate::train::spectral::converged_vectors(s, &phi, SPECTRAL_ITERATIONS),
        )
    }

    /// The probe of the trial's configuration at the checkpoint of `step`.
    pub fn probe(&self, step: Option<u64>) -> anyhow::Result<(u64, ProbeReport)> {
        let (s, p) = self.point(step)?;
        let c = &self.config;
        let report = probe_point(
            &self.field_at(s, &p)?,
            &p,
            &c.probe,
            c.seed,
            &c.train,
            c.train.opt_g.lr(),
            c.train.opt_d.lr(),
        );
        Ok((s, report))
    }

    /// Folder of the outputs of a probe after training: `TRIAL/probes/NAME`.
    fn out_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let d = self.dir.join("probes").join(name);
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        Ok(d)
    }

    /// Probes the checkpoint of `step` and writes `probes/step-N/eigen.csv` (the columns of
    /// the trial's eigen.csv), and with `matrix` the whole Jacobian as `jacobian.npy`.
    pub fn write_probe(
        &self,
        step: Option<u64>,
        matrix: bool,
    ) -> anyhow::Result<(u64, ProbeReport, PathBuf)> {
        let (s, report) = self.probe(step)?;
        let dir = self.out_dir(&format!("step-{s}"))?;
        let mut sink = CsvSink::new(&dir, false);
        sink.eigen_rows(s, &report)?;
        sink.finish()?;
        if matrix {
            let (_, p) = self.point(Some(s))?;
            let n = p.len();
            let jac = jacobian(&self.field_at(s, &p)?, &p, self.config.probe.product);
            npy::write(&dir.join("jacobian.npy"), &jac, &[n, n])?;
        }
        Ok((s, report, dir))
    }

    /// The path-angle profile from the checkpoint of `from` to that of `to`, written as
    /// `probes/path-FROM-TO/path_angle.csv`.
    pub fn write_path(&self, from: u64, to: u64, points: usize) -> anyhow::Result<PathBuf> {
        if from == to {
            anyhow::bail!(
                "--path {from} {to}: a path from a checkpoint to itself has no direction; give \
                 two different steps (there are: {:?})",
                self.steps()
            );
        }
        let (_, a) = self.point(Some(from))?;
        let (_, b) = self.point(Some(to))?;
        let profile = path_angle(&self.field_at(to, &b)?, &a, &b, &alphas(points));
        let dir = self.out_dir(&format!("path-{from}-{to}"))?;
        let mut sink = CsvSink::new(&dir, false);
        sink.path_angle(&profile)?;
        Ok(dir.join("path_angle.csv"))
    }
}
