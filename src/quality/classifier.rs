//! The classifier that judges generated images: DCGAN's discriminator trunk (4x4 convolutions
//! of stride 2 with leaky ReLU, `WIDTH` channels doubling, see `nets::dcgan`) mapped to
//! [`FEATURES`] features with ReLU, then linearly to the classes. Trained with cross-entropy
//! and Adam on the data set's training split, in f32 on the CPU whatever the trials compute
//! on, from a fixed seed, so one data set always gets the same classifier; its accuracy is
//! measured on the held-out split.

use std::time::Instant;

use burn::backend::Flex;
use burn::tensor::{activation, Tensor};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::frechet::Gaussian;
use crate::backend::{host, matrix, CpuF32, CPU_F32};
use crate::data::images::ImageSet;
use crate::net_ops::NetOps;
use crate::nets::dcgan::{Dcgan, Role};
use crate::nets::ParamSpec;
use crate::spec::{AdamConfig, Norm, OptimizerConfig};
use crate::train::Optimizer;

/// Width of the feature layer the Fréchet distance compares.
pub const FEATURES: usize = 128;
/// Channels of the first convolution.
const WIDTH: usize = 32;
/// Changes whenever training or architecture change, so cached classifiers of an older
/// recipe are not taken for new ones.
pub const RECIPE: u32 = 1;
/// Training images whose features are compared with the held-out ones' for the floor of the
/// Fréchet distance (`record.eval_samples`' default: the distance's bias depends on it).
const FLOOR_IMAGES: usize = 2000;
/// Images per forward pass when judging (bounds the memory of a measurement).
const CHUNK: usize = 500;

/// How the classifier is trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Passes over the training split (at least `min_steps` steps are made).
    pub epochs: usize,
    pub min_steps: usize,
    pub batch: usize,
    /// Adam's learning rate (betas 0.9, 0.999), a tenth of it for the last quarter of the
    /// steps.
    pub lr: f64,
    /// Seed of the initialisation and of the batch order.
    pub seed: u64,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            epochs: 4,
            min_steps: 300,
            batch: 64,
            lr: 1e-3,
            seed: 0,
        }
    }
}

/// What training measured; kept beside a cached classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingReport {
    pub recipe_version: u32,
    pub recipe: Recipe,
    pub classes: usize,
    pub train_images: usize,
    pub test_images: usize,
    pub steps: usize,
    /// Share (0 to 1) of held-out images classified correctly.
    pub test_accuracy: f64,
    /// The Fréchet distance between the features of 2000 training images (all, when there
    /// are fewer) and of the held-out ones: about the least a generator can reach.
    pub frechet_floor: f64,
    /// Mean cross-entropy over the last 100 training steps.
    pub final_loss: f64,
    pub seconds: f64,
}

/// A trained classifier with the feature statistics of the held-out real images.
#[derive(Debug)]
pub struct Classifier {
    trunk: Dcgan,
    classes: usize,
    params: Vec<Tensor<Flex, 2>>,
    real: Gaussian,
    pub report: TrainingReport,
}

/// Class probabilities and features of a set of images, row-major.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub probs: Vec<f64>,
    pub features: Vec<f64>,
}

fn trunk(set: &ImageSet) -> Dcgan {
    Dcgan {
        role: Role::Discriminator { outputs: FEATURES },
        image: set.shape,
        width: WIDTH,
        norm: Norm::None,
    }
}

/// Parameter tensors: the trunk's, then the head's `FEATURES x classes` weight and bias.
pub fn param_specs(trunk: &Dcgan, classes: usize) -> Vec<ParamSpec> {
    let mut s = trunk.param_specs();
    s.push(ParamSpec {
        name: "head.w".into(),
        rows: FEATURES,
        cols: classes,
    });
    s.push(ParamSpec {
        name: "head.b".into(),
        rows: 1,
        cols: classes,
    });
    s
}

/// He initialisation (normal, std sqrt(2 / fan-in)); biases 0. Convolution weights are stored
/// `out x (in 4 4)` (fan-in: columns), linear ones `in x out` (fan-in: rows).
fn init<R: Rng>(specs: &[ParamSpec], rng: &mut R) -> Vec<Vec<f64>> {
    specs
        .iter()
        .map(|s| {
            if !s.name.ends_with(".w") {
                return vec![0.0; s.len()];
            }
            let fan_in = if s.name.starts_with("down") {
                s.cols
            } else {
                s.rows
            };
            let std = (2.0 / fan_in as f64).sqrt();
            (0..s.len())
                .map(|_| {
                    let e: f64 = StandardNormal.sample(rng);
                    std * e
                })
                .collect()
        })
        .collect()
}

/// Features and logits of image rows `x`.
fn forward<B: NetOps>(
    trunk: &Dcgan,
    params: &[Tensor<B, 2>],
    x: Tensor<B, 2>,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let n = params.len() - 2;
    let features = activation::relu(trunk.forward(&params[..n], x));
    let logits = features.clone().matmul(params[n].clone()) + params[n + 1].clone();
    (features, logits)
}

/// Rows `idx` of `set`, scaled to [-1, 1].
fn rows(set: &ImageSet, idx: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(idx.len() * set.shape.len());
    for &i in idx {
        set.push_scaled(i, &mut out);
    }
    out
}

impl Classifier {
    /// Trains a classifier on `train` and measures it on `held_out` (both labelled).
    pub fn train(train: &ImageSet, held_out: &ImageSet, recipe: Recipe) -> anyhow::Result<Self> {
        let start = Instant::now();
        anyhow::ensure!(
            !train.labels.is_empty() && train.labels.len() == train.count(),
            "the training images have no class labels"
        );
        anyhow::ensure!(
            !held_out.labels.is_empty() && held_out.count() > 0,
            "the held-out images have no class labels"
        );
        let classes = usize::from(*train.labels.iter().max().unwrap_or(&0)) + 1;
        anyhow::ensure!(classes >= 2, "the training images hold a single class");
        let trunk = trunk(train);
        let specs = param_specs(&trunk, classes);
        let mut rng = crate::rng::stream(recipe.seed, crate::rng::Stream::Classifier);
        let mut params: Vec<Tensor<Flex, 2>> = specs
            .iter()
            .zip(init(&specs, &mut rng))
            .map(|(s, v)| matrix::<Flex>(v, s.rows, s.cols, &CPU_F32))
            .collect();
        let adam = OptimizerConfig::Adam(AdamConfig {
            lr: recipe.lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        });
        let mut opt = Optimizer::<Flex>::new(adam, params.len());
        let n = train.count();
        let batch = recipe.batch.min(n);
        let per_epoch = n / batch;
        let steps = (recipe.epochs * per_epoch).max(recipe.min_steps);
        let dim = train.shape.len();
        let mut order: Vec<usize> = (0..n).collect();
        let mut losses = Vec::new();
        for step in 0..steps {
            if step == steps - steps / 4 {
                opt.lr_scale = vec![0.1; params.len()];
            }
            if step % per_epoch == 0 {
                order.shuffle(&mut rng);
            }
            let at = (step % per_epoch) * batch;
            let idx = &order[at..at + batch];
            let mut onehot = vec![0.0; batch * classes];
            for (r, &i) in idx.iter().enumerate() {
                onehot[r * classes + usize::from(train.labels[i])] = 1.0;
            }
            let x = Tensor::<CpuF32, 2>::from_inner(matrix::<Flex>(
                rows(train, idx),
                batch,
                dim,
                &CPU_F32,
            ));
            let y =
                Tensor::<CpuF32, 2>::from_inner(matrix::<Flex>(onehot, batch, classes, &CPU_F32));
            let leaves: Vec<Tensor<CpuF32, 2>> = crate::train::lift(&params);
            let (_, logits) = forward(&trunk, &leaves, x);
            let loss = (activation::log_softmax(logits, 1) * y)
                .sum()
                .div_scalar(-(batch as f64));
            if step + 100 >= steps {
                losses.push(host(loss.clone().inner())[0]);
            }
            let grads = loss.backward();
            opt.step(&mut params, crate::game::field::grads_of(&leaves, &grads));
        }
        let mut c = Classifier {
            trunk,
            classes,
            params,
            real: Gaussian::fit(&[], FEATURES),
            report: TrainingReport {
                recipe_version: RECIPE,
                recipe,
                classes,
                train_images: n,
                test_images: held_out.count(),
                steps,
                test_accuracy: f64::NAN,
                frechet_floor: f64::NAN,
                final_loss: losses.iter().sum::<f64>() / losses.len().max(1) as f64,
                seconds: 0.0,
            },
        };
        let (accuracy, real) = c.held_out_figures(held_out);
        let some: Vec<usize> = (0..n.min(FLOOR_IMAGES)).collect();
        let train_features = Gaussian::fit(&c.judge(&rows(train, &some)).features, FEATURES);
        c.report.frechet_floor = super::frechet::frechet_distance(&train_features, &real);
        c.real = real;
        c.report.test_accuracy = accuracy;
        c.report.seconds = start.elapsed().as_secs_f64();
        Ok(c)
    }

    /// Accuracy on `held_out` and the Gaussian of its features.
    fn held_out_figures(&self, held_out: &ImageSet) -> (f64, Gaussian) {
        let all: Vec<usize> = (0..held_out.count()).collect();
        let seen = self.judge(&rows(held_out, &all));
        let correct = seen
            .probs
            .chunks_exact(self.classes)
            .zip(&held_out.labels)
            .filter(|(p, &label)| argmax(p) == usize::from(label))
            .count();
        (
            correct as f64 / held_out.count() as f64,
            Gaussian::fit(&seen.features, FEATURES),
        )
    }

    /// A classifier from saved values (see [`Classifier::values`]); `None` when they do not fit
    /// the architecture for `set`'s image shape.
    pub fn from_values(
        set: &ImageSet,
        report: TrainingReport,
        params: &[f64],
        real: &[f64],
    ) -> Option<Classifier> {
        let trunk = trunk(set);
        let specs = param_specs(&trunk, report.classes);
        let total: usize = specs.iter().map(ParamSpec::len).sum();
        if params.len() != total || report.recipe_version != RECIPE {
            return None;
        }
        let real = Gaussian::from_rows(real, FEATURES)?;
        let mut at = 0;
        let params = specs
            .iter()
            .map(|s| {
                at += s.len();
                matrix::<Flex>(params[at - s.len()..at].to_vec(), s.rows, s.cols, &CPU_F32)
            })
            .collect();
        Some(Classifier {
            trunk,
            classes: report.classes,
            params,
            real,
            report,
        })
    }

    /// The parameters as one vector (tensors in order), and the real features' Gaussian as
    /// `(1 + FEATURES) x FEATURES` rows.
    pub fn values(&self) -> (Vec<f64>, Vec<f64>) {
        let params = self.params.iter().flat_map(|p| host(p.clone())).collect();
        (params, self.real.to_rows())
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The Gaussian of the held-out real images' features.
    pub fn real_features(&self) -> &Gaussian {
        &self.real
    }

    /// Class probabilities and features of row-major `images` in [-1, 1].
    pub fn judge(&self, images: &[f64]) -> Judgement {
        let dim = self.trunk.image.len();
        let mut out = Judgement {
            probs: Vec::new(),
            features: Vec::new(),
        };
        for chunk in images.chunks(CHUNK * dim) {
            let n = chunk.len() / dim;
            let x = matrix::<Flex>(chunk.to_vec(), n, dim, &CPU_F32);
            let (features, logits) = forward(&self.trunk, &self.params, x);
            out.probs.extend(host(activation::softmax(logits, 1)));
            out.features.extend(host(features));
        }
        out
    }
}

/// Index of the largest value (the first of equal ones, so ties resolve the same way
/// everywhere).
pub(crate) fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |acc, (i, &p)| if p > acc.1 { (i, p) } else { acc },
        )
        .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::{shapes, ImageShape};

    fn quick() -> Recipe {
        Recipe {
            epochs: 1,
            min_steps: 400,
            batch: 32,
            lr: 2e-3,
            seed: 0,
        }
    }

    fn sets() -> (ImageSet, ImageSet) {
        let shape = ImageShape {
            channels: 1,
            size: 16,
        };
        (shapes(shape, 4000, 1), shapes(shape, 400, 2))
    }

    #[test]
    fn learns_the_generated_shapes_the_same_way_whatever_the_threads() -> anyhow::Result<()> {
        let (train, held) = sets();
        let c = Classifier::train(&train, &held, quick())?;
        let r = &c.report;
        assert_eq!(
            (r.classes, r.train_images, r.test_images, r.steps),
            (4, 4000, 400, 400)
        );
        assert!(r.test_accuracy >= 0.9, "{r:?}");
        assert!(r.frechet_floor.is_finite() && r.frechet_floor >= 0.0);
        // On one thread the same classifier, to the bit.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
        let one = pool.install(|| Classifier::train(&train, &held, quick()))?;
        assert_eq!(one.values(), c.values());
        // Probabilities are distributions; features are ReLU outputs.
        let rows: Vec<f64> = (0..5)
            .flat_map(|i| {
                let mut v = Vec::new();
                held.push_scaled(i, &mut v);
                v
            })
            .collect();
        let seen = c.judge(&rows);
        assert_eq!(
            (seen.probs.len(), seen.features.len()),
            (5 * 4, 5 * FEATURES)
        );
        for p in seen.probs.chunks(4) {
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{p:?}");
        }
        assert!(seen.features.iter().all(|&f| f >= 0.0));
        Ok(())
    }

    #[test]
    fn saved_values_give_the_same_classifier_and_wrong_ones_are_refused() -> anyhow::Result<()> {
        let (train, held) = sets();
        let recipe = Recipe {
            min_steps: 5,
            ..quick()
        };
        let c = Classifier::train(&train, &held, recipe)?;
        let (params, real) = c.values();
        let back = Classifier::from_values(&train, c.report.clone(), &params, &real)
            .ok_or_else(|| anyhow::anyhow!("saved values refused"))?;
        let mut rows = Vec::new();
        held.push_scaled(0, &mut rows);
        held.push_scaled(1, &mut rows);
        assert_eq!(back.judge(&rows).probs, c.judge(&rows).probs);
        assert_eq!(back.real_features(), c.real_features());
        assert!(Classifier::from_values(&train, c.report.clone(), &params[1..], &real).is_none());
        let mut old = c.report.clone();
        old.recipe_version = RECIPE + 1;
        assert!(Classifier::from_values(&train, old, &params, &real).is_none());
        // Images of another size do not fit these parameters.
        let other = shapes(
            ImageShape {
                channels: 1,
                size: 32,
            },
            10,
            1,
        );
        assert!(Classifier::from_values(&other, c.report.clone(), &params, &real).is_none());
        Ok(())
    }
}
