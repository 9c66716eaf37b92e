//! What a trial records and where the records go: the [`TrialSink`] that receives per-step
//! rows, mode coverage, probe reports, samples, path-angle profiles and checkpoints, beside
//! the record types it carries and the state of the recording that a checkpoint keeps.

pub use crate::probe::modes::ModeCoverage;
pub use crate::probe::path::PathPoint;
pub use crate::probe::ProbeReport;
pub use crate::quality::ImageQuality;
use crate::train::state::SavedState;

/// Where a running trial's records go.
pub trait TrialSink {
    /// Called once, before any row, with the columns of `metrics.csv` (not again when a trial
    /// resumes: its table already has them).
    fn metrics_header(&mut self, columns: &[String]) -> anyhow::Result<()>;
    /// One row of `metrics.csv`, in header order.
    fn metrics_row(&mut self, row: &[f64]) -> anyhow::Result<()>;
    /// One row of `modes.csv`.
    fn modes_row(&mut self, step: u64, coverage: &ModeCoverage) -> anyhow::Result<()>;
    /// One row of `quality.csv` (image sample quality).
    fn quality_row(&mut self, _step: u64, _quality: &ImageQuality) -> anyhow::Result<()> {
        Ok(())
    }
    /// The rows of `eigen.csv` for one probe.
    fn eigen_rows(&mut self, step: u64, report: &ProbeReport) -> anyhow::Result<()>;
    /// `path_angle.csv`: the path-angle profile from the first to the last point of training.
    fn path_angle(&mut self, points: &[PathPoint]) -> anyhow::Result<()>;
    /// Saves the flat parameters (theta then phi) of the point reached after `step` updates.
    fn checkpoint(&mut self, _step: u64, _params: &[f64]) -> anyhow::Result<()> {
        Ok(())
    }
    /// Saves, beside the parameters of `step`, the spectral-normalisation vectors that step
    /// normalises with (see `train::spectral::host_values`), so a later probe of the
    /// checkpoint sees the field training probed.
    fn spectral_checkpoint(&mut self, _step: u64, _values: &[f64]) -> anyhow::Result<()> {
        Ok(())
    }
    /// Rows of `samples.csv`: 2-D points (row-major pairs), real ones or generated at `step`.
    fn samples_rows(&mut self, _step: u64, _real: bool, _points: &[f64]) -> anyhow::Result<()> {
        Ok(())
    }
    /// Saves the sample grid (PNG bytes) of an image trial at `step`.
    fn image_grid(&mut self, _step: u64, _png: &[u8]) -> anyhow::Result<()> {
        Ok(())
    }
    /// Saves a grid (PNG bytes) of real images of an image trial, once at its start.
    fn real_grid(&mut self, _png: &[u8]) -> anyhow::Result<()> {
        Ok(())
    }
    /// Called once when a trial ends (done or diverged): an image trial's grids become one
    /// animation.
    fn grids_done(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    /// Saves the trial state with the records made so far; the records sent before it must
    /// be on disk when it is, so that a resumed trial continues its tables where the state
    /// was taken.
    fn save_state(&mut self, _checkpoint: &Checkpoint) -> anyhow::Result<()> {
        Ok(())
    }
}

/// What the recording of a running trial carries from step to step, beyond its tables.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordState {
    /// The last row sent to `metrics.csv` (its final figures come from it).
    pub last_row: Vec<f64>,
    /// The last mode-coverage measurement.
    pub last_modes: Option<ModeCoverage>,
    /// The last image-quality measurement.
    pub last_quality: Option<ImageQuality>,
    /// Wall time spent on the trial so far, over all its runs.
    pub wall_time_s: f64,
    /// The initial point (theta then phi), kept for the path-angle profile when probes are on.
    pub initial_point: Option<Vec<f64>>,
    /// The generated samples of the evaluation latents at the last mode-coverage measurement
    /// (for the next one's `sample_motion`).
    pub last_eval: Option<Vec<f64>>,
}

/// A checkpoint: the trial state and the state of its recording after `trainer.step` steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub trainer: SavedState,
    pub records: RecordState,
}
