//! Sample quality of image GANs, the image analogue of mode coverage (SPEC section 3.5): a
//! small classifier of the data set ([`classifier`]), trained by ganlab once per data set and
//! cached ([`cache`]), labels the generated images of the fixed evaluation latents.
//!
//! - A prediction is *confident* when the classifier gives its class a probability of at
//!   least [`CONFIDENT`] (the analogue of a high-quality sample near a mode).
//! - A class is *covered* when at least one confident prediction falls on it.
//! - `confident_share`: the percentage of generated images predicted confidently.
//! - `reverse_kl`: KL(q || uniform) for q the class histogram of the confident predictions
//!   (0 when they spread evenly over the classes, log(classes) when all fall on one; NaN
//!   when there is none).
//! - `frechet_distance`: the squared Fréchet distance between Gaussians fitted to the
//!   classifier's features of the generated images and of the held-out real images
//!   ([`frechet`]; named for what it is: not FID, which needs Inception).

pub mod cache;
pub mod classifier;
pub mod frechet;

pub use classifier::Classifier;

/// The class probability from which a prediction counts as confident.
pub const CONFIDENT: f64 = 0.9;

/// One measurement of image sample quality.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageQuality {
    /// Classes with at least one confident prediction.
    pub classes_covered: usize,
    /// Classes of the data set.
    pub classes_total: usize,
    /// Percentage (0 to 100) of images predicted confidently.
    pub confident_share: f64,
    /// KL(q || uniform) of the confident predictions' class histogram; NaN without any.
    pub reverse_kl: f64,
    /// Squared Fréchet distance between the classifier's features of the generated and the
    /// held-out real images.
    pub frechet_distance: f64,
}

/// Class coverage of row-major class probabilities (`classes` per image): (classes covered,
/// confident share in percent, reverse KL). Rows with a non-finite value are never confident.
pub fn class_coverage(probs: &[f64], classes: usize) -> (usize, f64, f64) {
    let mut counts = vec![0usize; classes];
    let mut n = 0;
    for row in probs.chunks_exact(classes) {
        n += 1;
        if row.iter().any(|p| !p.is_finite()) {
            continue;
        }
        let best = classifier::argmax(row);
        if row[best] >= CONFIDENT {
            counts[best] += 1;
        }
    }
    let confident: usize = counts.iter().sum();
    let reverse_kl = crate::probe::modes::reverse_kl_to_uniform(&counts);
    let share = if n == 0 {
        0.0
    } else {
        100.0 * confident as f64 / n as f64
    };
    (counts.iter().filter(|&&c| c > 0).count(), share, reverse_kl)
}

/// The image data sets, each once, of the trials that measure image quality.
pub fn measured_image_data<'a>(
    trials: impl IntoIterator<Item = &'a crate::spec::TrialConfig>,
) -> Vec<crate::spec::ImageData> {
    let mut sets: Vec<crate::spec::ImageData> = Vec::new();
    for t in trials {
        if let crate::spec::DataConfig::Images(d) = &t.data {
            if t.record.image_quality && !sets.contains(d) {
                sets.push(d.clone());
            }
        }
    }
    sets
}

/// The quality of row-major `images` in [-1, 1] by `judge`.
pub fn measure(judge: &Classifier, images: &[f64]) -> ImageQuality {
    let seen = judge.judge(images);
    let classes = judge.classes();
    let (classes_covered, confident_share, reverse_kl) = class_coverage(&seen.probs, classes);
    let generated = frechet::Gaussian::fit(&seen.features, classifier::FEATURES);
    ImageQuality {
        classes_covered,
        classes_total: classes,
        confident_share,
        reverse_kl,
        frechet_distance: frechet::frechet_distance(&generated, judge.real_features()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_coverage_of_hand_made_predictions() {
        // Four classes; six images: two confident on class 0, one on class 2, one at exactly
        // the threshold on class 2, one unsure (0.6), one NaN row.
        let probs = [
            0.95,
            0.05,
            0.0,
            0.0, //
            0.91,
            0.03,
            0.03,
            0.03, //
            0.0,
            0.0,
            1.0,
            0.0, //
            0.05,
            0.05,
            0.9,
            0.0, //
            0.6,
            0.4,
            0.0,
            0.0, //
            f64::NAN,
            0.0,
            1.0,
            0.0,
        ];
        let (covered, share, kl) = class_coverage(&probs, 4);
        assert_eq!(covered, 2);
        assert!((share - 100.0 * 4.0 / 6.0).abs() < 1e-12);
        // q = (1/2, 0, 1/2, 0): KL = 2 * 1/2 * ln(1/2 * 4) = ln 2.
        assert!((kl - 2f64.ln()).abs() < 1e-12);
        // Every class once, confidently: KL 0, all covered.
        let even = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(class_coverage(&even, 3), (3, 100.0, 0.0));
        // All on one class of ten: log 10.
        let one: Vec<f64> = (0..5)
            .flat_map(|_| {
                let mut r = vec![0.0; 10];
                r[7] = 0.99;
                r
            })
            .collect();
        let (c, s, kl) = class_coverage(&one, 10);
        assert_eq!((c, s), (1, 100.0));
        assert!((kl - 10f64.ln()).abs() < 1e-12);
        // Nothing confident: nothing covered, KL undefined.
        let (c, s, kl) = class_coverage(&[0.5, 0.5, 0.5, 0.5], 2);
        assert_eq!((c, s), (0, 0.0));
        assert!(kl.is_nan());
    }
}
