//! Classifiers are trained once per data set and kept: in the process (shared by its trials)
//! and on disk under the cache folder, `$GANLAB_CACHE`, else `$XDG_CACHE_HOME/ganlab`, else
//! `~/.cache/ganlab`, in `classifiers/NAME-KEY/`: `classifier.toml` (what training measured),
//! `parameters.npy` and `real_features.npy` (the held-out images' feature mean and covariance).
//! KEY is a checksum of the images and labels of both splits and of the recipe, so a changed
//! file gets a new classifier. Processes that need one at once (parallel studies, Slurm array
//! tasks) take a file lock: one trains, the others wait and read its result.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::classifier::{Classifier, Recipe, TrainingReport, RECIPE};
use crate::data::images::{self, ImageSet, Split};
use crate::spec::ImageData;
use crate::store::{npy, write_atomic};

/// `classifier.toml`: the data set it was trained on and what training measured.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    data: ImageData,
    training: TrainingReport,
}

/// The cache folder (see the module's note); `None` when no variable names one.
pub fn cache_root() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("GANLAB_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("ganlab")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("ganlab")))
}

/// A checksum (64 bits, hex) of both splits' shapes, images and labels and of the recipe.
pub fn key(train: &ImageSet, held_out: &ImageSet, recipe: &Recipe) -> String {
    let mut parts = [
        crc32fast::Hasher::new(),
        crc32fast::Hasher::new_with_initial(0x9e37_79b9),
    ];
    for h in &mut parts {
        h.update(format!("recipe {RECIPE} {recipe:?}").as_bytes());
        for set in [train, held_out] {
            h.update(format!("{:?} {}", set.shape, set.count()).as_bytes());
            h.update(&set.pixels);
            h.update(&set.labels);
        }
    }
    let [a, b] = parts.map(|h| h.finalize());
    format!("{a:08x}{b:08x}")
}

/// The classifier of the images `cfg` names, trained if no cache holds it; `None` for a data
/// set without class labels (an image folder).
pub fn obtain(cfg: &ImageData) -> anyhow::Result<Option<Arc<Classifier>>> {
    obtain_in(cfg, cache_root().as_deref(), Recipe::default())
}

/// [`obtain`] with the cache folder `root` (none: train in every process) and `recipe`.
pub fn obtain_in(
    cfg: &ImageData,
    root: Option<&Path>,
    recipe: Recipe,
) -> anyhow::Result<Option<Arc<Classifier>>> {
    static KEPT: OnceLock<Mutex<HashMap<String, Arc<Classifier>>>> = OnceLock::new();
    // One training at a time in a process: trials that need the same classifier wait for it.
    static TRAINING: Mutex<()> = Mutex::new(());
    let train = images::load(cfg, Split::Train)?;
    let held_out = images::load(cfg, Split::HeldOut)?;
    if train.labels.is_empty() || held_out.labels.is_empty() {
        return Ok(None);
    }
    let key = key(&train, &held_out, &recipe);
    let kept = KEPT.get_or_init(Default::default);
    let _training = TRAINING.lock().map_err(poisoned)?;
    if let Some(c) = kept.lock().map_err(poisoned)?.get(&key) {
        return Ok(Some(c.clone()));
    }
    let classifier = Arc::new(match root {
        Some(root) => on_disk(cfg, &train, &held_out, root, &key, recipe)?,
        None => Classifier::train(&train, &held_out, recipe)?,
    });
    kept.lock()
        .map_err(poisoned)?
        .insert(key, classifier.clone());
    Ok(Some(classifier))
}

fn poisoned<T>(_: T) -> anyhow::Error {
    anyhow::anyhow!("the classifier cache was left inconsistent by a failed thread")
}

/// The folder of one cached classifier.
pub fn folder(root: &Path, cfg: &ImageData, key: &str) -> PathBuf {
    let source = toml::Value::try_from(cfg.source)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| "images".into());
    root.join("classifiers").join(format!(
        "{source}-{}x{}x{}-{key}",
        cfg.size, cfg.size, cfg.channels
    ))
}

/// Reads the classifier from `root`, or trains it under the folder's lock and saves it there.
fn on_disk(
    cfg: &ImageData,
    train: &ImageSet,
    held_out: &ImageSet,
    root: &Path,
    key: &str,
    recipe: Recipe,
) -> anyhow::Result<Classifier> {
    let dir = folder(root, cfg, key);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock_path = dir.join(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    if let Some(c) = read(&dir, train) {
        return Ok(c);
    }
    eprintln!(
        "ganlab: training the classifier that measures sample quality on {} images \
         (once per data set; kept in {})",
        train.count(),
        dir.display()
    );
    let c = Classifier::train(train, held_out, recipe)?;
    eprintln!(
        "ganlab: classifier trained in {:.0} s; held-out accuracy {:.2} %",
        c.report.seconds,
        100.0 * c.report.test_accuracy
    );
    let (params, real) = c.values();
    npy::write(&dir.join("parameters.npy"), &params, &[params.len()])?;
    let dim = super::classifier::FEATURES;
    npy::write(&dir.join("real_features.npy"), &real, &[1 + dim, dim])?;
    // Written last: a folder with `classifier.toml` is complete.
    let saved = Saved {
        data: cfg.clone(),
        training: c.report.clone(),
    };
    let text =
        toml::to_string_pretty(&saved).context("cannot serialise the classifier's report")?;
    write_atomic(&dir.join("classifier.toml"), text.as_bytes())?;
    Ok(c)
}

/// A complete cached classifier in `dir`, if it reads back and fits `train`'s images.
fn read(dir: &Path, train: &ImageSet) -> Option<Classifier> {
    let text = fs::read_to_string(dir.join("classifier.toml")).ok()?;
    let saved: Saved = toml::from_str(&text).ok()?;
    let (_, params) = npy::read(&dir.join("parameters.npy")).ok()?;
    let (_, real) = npy::read(&dir.join("real_features.npy")).ok()?;
    Classifier::from_values(train, saved.training, &params, &real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ImageSource;

    #[test]
    fn a_classifier_is_trained_once_then_read_from_the_cache_folder() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let cfg = ImageData {
            source: ImageSource::Shapes,
            size: 8,
            count: 200,
            seed: 4,
            ..Default::default()
        };
        let recipe = Recipe {
            epochs: 1,
            min_steps: 20,
            batch: 16,
            lr: 1e-3,
            seed: 0,
        };
        let train = images::load(&cfg, Split::Train)?;
        let held = images::load(&cfg, Split::HeldOut)?;
        let key = key(&train, &held, &recipe);
        let c = on_disk(&cfg, &train, &held, root.path(), &key, recipe)?;
        let dir = folder(root.path(), &cfg, &key);
        assert!(
            dir.ends_with(format!("classifiers/shapes-8x8x1-{key}")),
            "{dir:?}"
        );
        let saved: Saved = toml::from_str(&fs::read_to_string(dir.join("classifier.toml"))?)?;
        assert_eq!(saved.training, c.report);
        assert_eq!(saved.data, cfg);
        // The second call reads what the first saved (training again would take longer than
        // the file's modification time allows to tell apart, so compare values: equal
        // either way, and the saved report's timing is the first run's).
        let again = on_disk(&cfg, &train, &held, root.path(), &key, recipe)?;
        assert_eq!(again.values(), c.values());
        assert_eq!(again.report.seconds, c.report.seconds);
        // A damaged parameter file is not used: the classifier is trained again.
        fs::write(dir.join("parameters.npy"), b"not npy")?;
        assert!(read(&dir, &train).is_none());
        let fresh = on_disk(&cfg, &train, &held, root.path(), &key, recipe)?;
        assert_eq!(fresh.values(), c.values());
        assert_ne!(fresh.report.seconds, c.report.seconds);
        // Other images (another seed of the generated set) get another key.
        let other = ImageData { seed: 5, ..cfg };
        let t2 = images::load(&other, Split::Train)?;
        let h2 = images::load(&other, Split::HeldOut)?;
        assert_ne!(super::key(&t2, &h2, &recipe), key);
        Ok(())
    }
}
