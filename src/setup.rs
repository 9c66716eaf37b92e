//! What a trial is built from, made once per trial: the data, the game (players and
//! objective), the probes' fixed batch, and the prior model fitted to the data before
//! adversarial training. Training, the in-training probes and `ganlab probe` all start from a
//! [`TrialSetup`], so they see the same data set and the same game.

use std::sync::Arc;

use crate::data::Dataset;
use crate::game::Game;
use crate::prior::FittedPrior;
use crate::probe::field::GameField;
use crate::spec::TrialConfig;

/// A trial's data, game, probe batch and prior model.
#[derive(Debug, Clone)]
pub struct TrialSetup {
    pub cfg: TrialConfig,
    pub data: Dataset,
    pub game: Game,
    /// The game on the fixed probe batch (`probe.batch` rows of the trial's `Probe` stream).
    pub field: GameField,
    /// The prior model fitted to the data before adversarial training (SPEC section 3.4);
    /// `None` for `prior_model = none`. The skip-GAN's generator carries it (see `nets`).
    pub prior: Option<Arc<FittedPrior>>,
}

impl TrialSetup {
    /// Builds everything a configuration names (reads a CSV data file if it names one).
    pub fn new(cfg: &TrialConfig) -> anyhow::Result<TrialSetup> {
        let data = Dataset::from_config(&cfg.data)?;
        let prior = crate::prior::fit(cfg, &data)?;
        let game = Game::new(cfg, data.dim(), data.image_shape(), prior.clone());
        let field = GameField::new(cfg, &data, game.clone(), cfg.probe.batch);
        Ok(TrialSetup {
            cfg: cfg.clone(),
            data,
            game,
            field,
            prior,
        })
    }
}
