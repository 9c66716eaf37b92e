//! Seeded random streams. Every trial draws from its own ChaCha8 streams, one per purpose, so
//! its numbers depend on its seed only: not on the number of jobs, threads or other trials.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is used for; each purpose is an independent ChaCha stream of the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    InitGenerator = 1,
    InitDiscriminator = 2,
    Data = 3,
    Latent = 4,
    /// Interpolation weights of the WGAN-GP penalty.
    Penalty = 5,
    /// Samples drawn to measure mode coverage, so that measuring does not shift training.
    Eval = 6,
    /// The fixed batch of the stability probes.
    Probe = 7,
    /// Real samples recorded for the report's sample figures.
    Plot = 8,
    /// Rows a prior model is fitted on, and the fit's own randomness (see `prior`).
    PriorFit = 9,
    /// Instance noise added to the samples the discriminator sees.
    InstanceNoise = 10,
    /// The starting vectors of spectral normalisation's power iteration.
    SpectralNorm = 11,
    /// The image classifier's initialisation and batch order (see `quality::classifier`):
    /// drawn from the classifier recipe's seed, never a trial's, so not in [`Stream::ALL`].
    Classifier = 12,
}

impl Stream {
    /// Every stream of a trial, in number order.
    pub const ALL: [Stream; 11] = [
        Stream::InitGenerator,
        Stream::InitDiscriminator,
        Stream::Data,
        Stream::Latent,
        Stream::Penalty,
        Stream::Eval,
        Stream::Probe,
        Stream::Plot,
        Stream::PriorFit,
        Stream::InstanceNoise,
        Stream::SpectralNorm,
    ];

    /// The stream's name in status files.
    pub fn name(self) -> &'static str {
        match self {
            Stream::InitGenerator => "init_generator",
            Stream::InitDiscriminator => "init_discriminator",
            Stream::Data => "data",
            Stream::Latent => "latent",
            Stream::Penalty => "penalty",
            Stream::Eval => "eval",
            Stream::Probe => "probe",
            Stream::Plot => "plot",
            Stream::PriorFit => "prior_fit",
            Stream::InstanceNoise => "instance_noise",
            Stream::SpectralNorm => "spectral_norm",
            Stream::Classifier => "classifier",
        }
    }
}

/// The stream `purpose` of `seed`.
pub fn stream(seed: u64, purpose: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose as u64);
    rng
}
