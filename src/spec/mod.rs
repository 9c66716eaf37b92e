//! Experiment files: a base configuration plus sweep axes, expanded into resolved trials.
//!
//! ```toml
//! [study]
//! name = "quickstart"
//!
//! [base]                      # overrides of the defaults in `config::TrialConfig`
//! steps = 2000
//! data = { kind = "ring", modes = 8, radius = 2.0, std = 0.02 }
//!
//! [sweep]                     # a grid over dotted keys; the first key varies slowest
//! "objective.loss" = ["non_saturating", "wgan_gp"]
//! seed = [0, 1]
//! ```
//! Everything is checked before anything is written: syntax, unknown keys, types, ranges and
//! the files a trial reads. Errors name the file, the key and (where known) the line.

pub mod catalogue;
pub mod config;
pub mod memory;
pub(crate) mod validate;

use std::path::{Path, PathBuf};

pub use config::*;
use toml::{Table, Value};

use crate::error::ConfigError;

/// The most trials one experiment file may expand to.
pub const MAX_TRIALS: usize = 100_000;

/// The sweep axis whose values are whole variants: tables of `name` and dotted keys set
/// together (`{ name = "ebgan", "objective.loss" = "ebgan", discriminator = { kind = "ebgan" } }`),
/// for comparisons whose arms differ in several keys at once. Trials show the variant's name.
pub const VARIANT: &str = "variant";

/// A whole study, expanded and validated.
#[derive(Debug, Clone)]
pub struct Study {
    /// Name of the study (`[study] name`; required).
    pub name: String,
    pub description: String,
    /// The experiment file it came from.
    pub file: PathBuf,
    /// The swept dotted keys, in file order.
    pub swept_keys: Vec<String>,
    pub trials: Vec<PlannedTrial>,
    /// The `[slurm]` section: resources of the array tasks of `ganlab slurm`.
    pub slurm: crate::slurm::SlurmSettings,
    /// `[study] batch_trials`: trials that differ only in seed, learning rates, penalty
    /// weights or clip value train as one model (see `batch`).
    pub batch_trials: bool,
}

/// One point of the sweep grid.
#[derive(Debug, Clone)]
pub struct PlannedTrial {
    /// Directory name of the trial, unique in the study.
    pub name: String,
    /// The value of every swept key for this trial, in `Study::swept_keys` order.
    pub swept: Vec<Value>,
    pub config: TrialConfig,
}

/// Reads and validates an experiment file.
pub fn load(path: &Path) -> Result<Study, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        key: String::new(),
        line: None,
        message: format!("cannot read the experiment file: {e}"),
    })?;
    parse(&text, path)
}

/// Validates experiment-file text; `path` names the file in errors and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Study, ConfigError> {
    let err = |key: &str, message: String| ConfigError {
        file: path.to_path_buf(),
        key: key.to_string(),
        line: line_of(text, key),
        message,
    };
    let root: Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
        file: path.to_path_buf(),
        key: String::new(),
        line: e.span().map(|s| line_at(text, s.start)),
        message: format!("not valid TOML: {}", e.message().trim()),
    })?;

    for key in root.keys() {
        if !["study", "base", "sweep", "slurm"].contains(&key.as_str()) {
            return Err(err(
                key,
                "unknown top-level key; allowed: `study`, `base`, `sweep`, `slurm`".into(),
            ));
        }
    }

    let (name, description, batch_trials) =
        study_meta(root.get("study")).map_err(|(k, m)| err(&k, m))?;
    let slurm = slurm_settings(root.get("slurm")).map_err(|(k, m)| err(&k, m))?;
    let base = match root.get("base") {
        None => Table::new(),
        Some(Value::Table(t)) => t.clone(),
        Some(_) => return Err(err("base", "must be a table of configuration keys".into())),
    };
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();

    // The base alone must be a valid configuration, so that its errors name `base.KEY`.
    let base_config = deserialize(&base).map_err(|(k, m)| err(&format!("base.{k}"), m))?;
    if let Err((k, m)) = validate::check(&base_config) {
        if !k.is_empty() && !swept_prefix_of(root.get("sweep"), &k) {
            return Err(err(&format!("base.{k}"), m));
        }
    }

    let axes = sweep_axes(root.get("sweep")).map_err(|(k, m)| err(&k, m))?;
    let swept_keys: Vec<String> = axes.iter().map(|(k, _)| k.clone()).collect();
    // The grid is counted before it is built: a sweep too large to run is refused at once.
    let sizes: Vec<usize> = axes.iter().map(|(_, v)| v.len()).collect();
    let count = sizes
        .iter()
        .try_fold(1usize, |n, &k| n.checked_mul(k))
        .filter(|&n| n <= MAX_TRIALS);
    if count.is_none() {
        let product: Vec<String> = sizes.iter().map(usize::to_string).collect();
        return Err(err(
            "sweep",
            format!(
                "the sweep expands to {} trials; a study holds at most {MAX_TRIALS}: split it \
                 into several experiment files",
                product.join(" x ")
            ),
        ));
    }

    let mut trials = Vec::new();
    for (index, point) in grid(&axes).into_iter().enumerate() {
        let mut table = base.clone();
        for (key, value) in swept_keys.iter().zip(&point) {
            let set = |table: &mut Table, k: &str, v: &Value| {
                set_path(table, k, v.clone()).map_err(|m| err(&format!("sweep.\"{key}\""), m))
            };
            match (key.as_str(), value) {
                (VARIANT, Value::Table(t)) => {
                    for (k, v) in t.iter().filter(|(k, _)| *k != "name") {
                        set(&mut table, k, v)?;
                    }
                }
                _ => set(&mut table, key, value)?,
            }
        }
        // A variant shows as its name (trial names, trials.csv, the report).
        let point: Vec<Value> = swept_keys
            .iter()
            .zip(point)
            .map(|(k, v)| match (k.as_str(), &v) {
                (VARIANT, Value::Table(t)) => t.get("name").cloned().unwrap_or(v),
                _ => v,
            })
            .collect();
        // The swept key an error at `k` comes from: `k` itself or a key above it, or one
        // below it (an unknown key under a tagged section is reported at the section).
        let under = |k: &str, s: &str| {
            k == s || k.starts_with(&format!("{s}.")) || s.starts_with(&format!("{k}."))
        };
        let blame = |k: &str| match swept_keys.iter().find(|s| {
            under(k, s)
                || (s.as_str() == VARIANT && variant_keys(root.get("sweep")).any(|v| under(k, &v)))
        }) {
            Some(s) => format!("sweep.\"{s}\""),
            None => format!("base.{k}"),
        };
        let mut config = deserialize(&table).map_err(|(k, m)| {
            let value = describe_point(&swept_keys, &point);
            err(&blame(&k), format!("{m} (in the trial {value})"))
        })?;
        validate::check(&config).map_err(|(k, m)| err(&blame(&k), m))?;
        resolve_paths(&mut config, &base_dir).map_err(|(k, m)| err(&blame(&k), m))?;
        trials.push(PlannedTrial {
            name: trial_name(index, &swept_keys, &point),
            swept: point,
            config,
        });
    }

    Ok(Study {
        name,
        description,
        file: path.to_path_buf(),
        swept_keys,
        trials,
        slurm,
        batch_trials,
    })
}

/// The `[slurm]` section, checked: errors at `slurm.KEY`.
fn slurm_settings(value: Option<&Value>) -> Result<crate::slurm::SlurmSettings, (String, String)> {
    let Some(value) = value else {
        return Ok(Default::default());
    };
    if !value.is_table() {
        return Err((
            "slurm".into(),
            "must be a table of Slurm settings (partition, account, time, cpus, mem, gpus, \
             max_parallel, signal_seconds, extra)"
                .into(),
        ));
    }
    let settings: crate::slurm::SlurmSettings = serde_path_to_error::deserialize(value.clone())
        .map_err(|e| {
            let path = e.path().to_string();
            let key = match path.as_str() {
                "." => "slurm".to_string(),
                p => format!("slurm.{p}"),
            };
            (
                key,
                e.inner().to_string().replace('\n', " ").trim().to_string(),
            )
        })?;
    settings.check().map_err(|(k, m)| {
        // `extra[0]` is reported at `slurm.extra`.
        let k = k.split('[').next().unwrap_or_default();
        (format!("slurm.{k}"), m)
    })?;
    Ok(settings)
}

fn study_meta(value: Option<&Value>) -> Result<(String, String, bool), (String, String)> {
    let needs = "an experiment file needs a `[study]` table with `name`, the study's folder name \
                 (for example `[study]` then `name = \"week3-wgan\"`)";
    let Some(value) = value else {
        return Err(("study".into(), needs.into()));
    };
    let Value::Table(t) = value else {
        return Err((
            "study".into(),
            "must be a table with `name` and `description`".into(),
        ));
    };
    for k in t.keys() {
        if !["name", "description", "batch_trials"].contains(&k.as_str()) {
            return Err((
                format!("study.{k}"),
                "unknown key; allowed: `name`, `description`, `batch_trials`".into(),
            ));
        }
    }
    let name = match t.get("name") {
        None => return Err(("study".into(), needs.into())),
        Some(Value::String(s)) if is_safe_name(s) => s.clone(),
        Some(_) => {
            return Err((
                "study.name".into(),
                format!(
                    "must be a non-empty string of at most {MAX_NAME} letters, digits, `_`, `-` \
                     or `.`"
                ),
            ))
        }
    };
    let description = match t.get("description") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(("study.description".into(), "must be a string".into())),
    };
    let batch_trials =
        match t.get("batch_trials") {
            None => false,
            Some(Value::Boolean(b)) => *b,
            Some(_) => return Err((
                "study.batch_trials".into(),
                "must be true or false (true: trials that differ only in seed, learning rates, \
                 penalty weights or clip value train as one model)"
                    .into(),
            )),
        };
    Ok((name, description, batch_trials))
}

/// Longest study name: a folder name must stay under the file systems' 255 bytes with room
/// for `.partial` and `.old` suffixes.
const MAX_NAME: usize = 200;

fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Sections chosen by a `kind` tag. A section given without `kind` keeps the default kind, so
/// that `[base.generator] width = 64` means the default MLP with width 64.
const TAGGED_SECTIONS: &[&str] = &[
    "data",
    "generator",
    "discriminator",
    "train.opt_g",
    "train.opt_d",
    "prior_model",
];

fn fill_default_kinds(table: &mut Table) {
    fn fill(table: &mut Table, defaults: &Table, parts: &[&str]) {
        match parts {
            [] => {
                if let (false, Some(kind)) = (table.contains_key("kind"), defaults.get("kind")) {
                    table.insert("kind".into(), kind.clone());
                }
            }
            [first, rest @ ..] => {
                if let (Some(Value::Table(t)), Some(Value::Table(d))) =
                    (table.get_mut(*first), defaults.get(*first))
                {
                    fill(t, d, rest);
                }
            }
        }
    }
    let Ok(Value::Table(defaults)) = Value::try_from(TrialConfig::default()) else {
        return;
    };
    for path in TAGGED_SECTIONS {
        fill(table, &defaults, &path.split('.').collect::<Vec<_>>());
    }
}

/// Deserializes a configuration table, returning the dotted path of the failing key.
fn deserialize(table: &Table) -> Result<TrialConfig, (String, String)> {
    let mut table = table.clone();
    fill_default_kinds(&mut table);
    serde_path_to_error::deserialize(Value::Table(table.clone())).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let path = match inner_key(&table, &path) {
            Some(inner) => format!("{path}.{inner}"),
            None => path,
        };
        (
            path,
            e.inner().to_string().replace('\n', " ").trim().to_string(),
        )
    })
}

/// Within a section chosen by `kind` (serde reports its errors at the section), the key that
/// is wrong: the section without `kind` is read again as the struct of its kind, whose error
/// names the key.
fn inner_key(root: &Table, section: &str) -> Option<String> {
    fn key_of<T: serde::de::DeserializeOwned>(t: Table) -> Option<String> {
        let e = serde_path_to_error::deserialize::<_, T>(Value::Table(t)).err()?;
        let p = e.path().to_string();
        (p != ".").then_some(p)
    }
    if !TAGGED_SECTIONS.contains(&section) {
        return None;
    }
    let mut here = root;
    for part in section.split('.') {
        here = here.get(part)?.as_table()?;
    }
    let mut t = here.clone();
    let kind = t.remove("kind")?;
    let top = section.split('.').next_back()?;
    match (top, kind.as_str()?) {
        ("data", "dirac") => key_of::<DiracData>(t),
        ("data", "mixture1d") => key_of::<Mixture1dData>(t),
        ("data", "ring") => key_of::<RingData>(t),
        ("data", "grid") => key_of::<GridData>(t),
        ("data", "swiss_roll") => key_of::<SwissRollData>(t),
        ("data", "regression") => key_of::<RegressionData>(t),
        ("data", "csv") => key_of::<CsvData>(t),
        ("generator" | "discriminator", "mlp") => key_of::<MlpConfig>(t),
        ("generator" | "discriminator", "dirac" | "linear") => key_of::<ScalarInit>(t),
        ("opt_g" | "opt_d", "sgd") => key_of::<SgdConfig>(t),
        ("prior_model", "pca_gaussian") => key_of::<PcaGaussianConfig>(t),
        ("prior_model", "gmm") => key_of::<GmmConfig>(t),
        ("prior_model", "autoencoder") => key_of::<AutoencoderConfig>(t),
        ("opt_g" | "opt_d", "adam") => key_of::<AdamConfig>(t),
        ("opt_g" | "opt_d", "rmsprop") => key_of::<RmspropConfig>(t),
        _ => None,
    }
}

fn sweep_axes(value: Option<&Value>) -> Result<Vec<(String, Vec<Value>)>, (String, String)> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Table(t) = value else {
        return Err((
            "sweep".into(),
            "must be a table of `\"dotted.key\" = [values]`".into(),
        ));
    };
    let mut axes = Vec::new();
    for (key, values) in t {
        let here = format!("sweep.\"{key}\"");
        if key == VARIANT {
            check_variants(values).map_err(|m| (here.clone(), m))?;
        }
        match values {
            Value::Array(a) if !a.is_empty() => axes.push((key.clone(), a.clone())),
            Value::Array(_) => return Err((here, "a sweep axis needs at least one value".into())),
            Value::Table(_) => {
                return Err((
                    here,
                    "a sweep axis is an array of values; write nested keys quoted and dotted, e.g. \"train.opt_d.lr\" = [1e-4, 1e-3]".into(),
                ))
            }
            _ => return Err((here, "a sweep axis must be an array of values, e.g. [1, 2]".into())),
        }
    }
    Ok(axes)
}

/// Checks the values of the `variant` axis: tables with a unique string `name` and dotted
/// keys (not `variant` itself).
fn check_variants(values: &Value) -> Result<(), String> {
    let form = "each variant is a table with a `name` and the dotted keys it sets, e.g. \
                { name = \"wgan_gp\", \"objective.loss\" = \"wgan_gp\", \"train.n_critic\" = 5 }";
    let Value::Array(a) = values else {
        return Err(format!("must be an array of variants; {form}"));
    };
    let mut names = Vec::new();
    for v in a {
        let Value::Table(t) = v else {
            return Err(format!("holds {v}, not a table; {form}"));
        };
        let Some(Value::String(name)) = t.get("name") else {
            return Err(format!("a variant has no string `name`; {form}"));
        };
        if names.contains(name) {
            return Err(format!(
                "two variants are named `{name}`; names must differ"
            ));
        }
        if t.keys().any(|k| k == VARIANT || k.starts_with("variant.")) {
            return Err(format!("the variant `{name}` sets `variant`; {form}"));
        }
        names.push(name.clone());
    }
    Ok(())
}

/// The dotted keys the variants of a sweep set.
fn variant_keys(sweep: Option<&Value>) -> impl Iterator<Item = String> + '_ {
    let variants = match sweep {
        Some(Value::Table(t)) => match t.get(VARIANT) {
            Some(Value::Array(a)) => a.as_slice(),
            _ => &[],
        },
        _ => &[],
    };
    variants.iter().flat_map(|v| match v {
        Value::Table(t) => t.keys().filter(|k| *k != "name").cloned().collect(),
        _ => Vec::new(),
    })
}

/// Whether `key` lies under one of the swept keys, or under a key a variant sets (so the
/// sweep overrides it).
fn swept_prefix_of(sweep: Option<&Value>, key: &str) -> bool {
    let under = |s: &str| key == s || key.starts_with(&format!("{s}."));
    match sweep {
        Some(Value::Table(t)) => {
            t.keys().any(|s| under(s)) || variant_keys(sweep).any(|s| under(&s))
        }
        _ => false,
    }
}

/// The cartesian product of the axes, first axis slowest.
fn grid(axes: &[(String, Vec<Value>)]) -> Vec<Vec<Value>> {
    let mut points = vec![Vec::new()];
    for (_, values) in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push(v.clone());
                    q
                })
            })
            .collect();
    }
    points
}

fn set_path(table: &mut Table, dotted: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = dotted.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("a sweep key is a dotted path such as \"train.opt_d.lr\"".into());
    }
    let mut here = table;
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            here.insert(part.to_string(), value);
            return Ok(());
        }
        let next = here
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        here = match next {
            Value::Table(t) => t,
            _ => {
                return Err(format!(
                    "`{}` is not a table, so it has no key `{}`",
                    parts[..=i].join("."),
                    parts[i + 1]
                ))
            }
        };
    }
    Ok(())
}

fn describe_point(keys: &[String], point: &[Value]) -> String {
    keys.iter()
        .zip(point)
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `003-wgan_gp-1`: the index keeps names unique and ordered, the values make them readable.
fn trial_name(index: usize, _keys: &[String], point: &[Value]) -> String {
    let mut name = format!("{index:03}");
    for v in point {
        let raw = match v {
            Value::String(s) => s.clone(),
            // A whole section (`prior_model = [{ kind = "gmm", components = 8 }]`): its kind,
            // then its other values as written (`gmm-8`); the keys are in trials.csv.
            Value::Table(t) => {
                let text = |v: &Value| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let kind = t.get("kind").map(text);
                kind.into_iter()
                    .chain(t.iter().filter(|(k, _)| *k != "kind").map(|(_, v)| text(v)))
                    .collect::<Vec<_>>()
                    .join("-")
            }
            other => other.to_string(),
        };
        let clean: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        name.push('-');
        name.push_str(&clean);
    }
    name
}

/// Makes data paths absolute (relative to the experiment file) and checks they can be read.
fn resolve_paths(config: &mut TrialConfig, base_dir: &Path) -> Result<(), (String, String)> {
    if let DataConfig::Csv(csv) = &mut config.data {
        let p = PathBuf::from(&csv.path);
        let full = if p.is_absolute() { p } else { base_dir.join(p) };
        crate::table::check_csv(&full).map_err(|m| ("data.path".to_string(), m))?;
        let full = full.canonicalize().unwrap_or(full);
        csv.path = full.to_string_lossy().into_owned();
    }
    if let DataConfig::Images(images) = &mut config.data {
        if !images.path.is_empty() {
            let p = PathBuf::from(&images.path);
            let full = if p.is_absolute() { p } else { base_dir.join(p) };
            let full = full.canonicalize().unwrap_or(full);
            images.path = full.to_string_lossy().into_owned();
        }
        // Read now (once per process; trials share the set) so a missing or corrupt file is
        // refused before anything is written.
        crate::data::images::check(images).map_err(|m| ("data.path".to_string(), m))?;
        if config.record.image_quality {
            // The held-out images too: the classifier that measures sample quality is
            // tested on them, and the Fréchet distance compares against them.
            crate::data::images::check_held_out(images).map_err(|m| {
                (
                    "data.path".to_string(),
                    format!("{m} (the held-out images measure sample quality; set record.image_quality = false to train without them)"),
                )
            })?;
        }
    }
    Ok(())
}

/// The 1-based line of a dotted key (`base.train.batch`, `sweep."objective.loss"`), found
/// by walking the spanned parse of the file; the deepest key found wins.
pub fn line_of(text: &str, dotted: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let parts = split_key(dotted);
    let doc = DeTable::parse(text).ok()?;
    let mut table: &DeTable = doc.get_ref();
    let mut found = None;
    for part in parts {
        let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == part)?;
        found = Some(line_at(text, k.span().start));
        match v.get_ref() {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    found
}

fn split_key(dotted: &str) -> Vec<String> {
    // `sweep."a.b"` keeps the quoted part whole.
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in dotted.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

fn line_at(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(text: &str) -> Study {
        let text = match text.contains("[study]") {
            true => text.to_string(),
            false => format!("{text}\n[study]\nname = \"t\"\n"),
        };
        parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn sweep_expands_to_the_grid_first_axis_slowest() {
        let s = study(
            "[base]\nsteps = 3\n[sweep]\n\"objective.loss\" = [\"minimax\", \"wgan_gp\"]\nseed = [0, 1, 2]\n",
        );
        assert_eq!(s.swept_keys, vec!["objective.loss", "seed"]);
        assert_eq!(s.trials.len(), 6);
        let got: Vec<(Loss, u64)> = s
            .trials
            .iter()
            .map(|t| (t.config.objective.loss, t.config.seed))
            .collect();
        assert_eq!(got[0], (Loss::Minimax, 0));
        assert_eq!(got[2], (Loss::Minimax, 2));
        assert_eq!(got[3], (Loss::WganGp, 0));
        assert_eq!(got[5], (Loss::WganGp, 2));
        assert!(s.trials.iter().all(|t| t.config.steps == 3));
        assert_eq!(s.trials[4].name, "004-wgan_gp-1");
        let mut names: Vec<_> = s.trials.iter().map(|t| t.name.clone()).collect();
        names.dedup();
        assert_eq!(names.len(), 6);
    }

    #[test]
    fn no_sweep_is_one_trial_with_the_defaults_filled_in() {
        let s = study("[study]\nname = \"one\"\n");
        assert_eq!(s.name, "one");
        assert_eq!(s.trials.len(), 1);
        assert_eq!(s.trials[0].config, TrialConfig::default());
    }

    #[test]
    fn nested_sweep_keys_reach_tagged_sections() {
        let s = study(
            "[base.train.opt_d]\nkind = \"sgd\"\nlr = 0.1\n[sweep]\n\"train.opt_d.momentum\" = [-0.5, 0.0, 0.5]\n",
        );
        let m: Vec<f64> = s
            .trials
            .iter()
            .map(|t| match &t.config.train.opt_d {
                OptimizerConfig::Sgd(c) => c.momentum,
                _ => f64::NAN,
            })
            .collect();
        assert_eq!(m, vec![-0.5, 0.0, 0.5]);
    }

    #[test]
    fn a_section_without_kind_keeps_the_default_kind() {
        let s = study("[base.generator]\nwidth = 7\n[base.train.opt_d]\nlr = 0.5\n");
        assert_eq!(
            s.trials[0].config.generator,
            GeneratorConfig::Mlp(MlpConfig {
                width: 7,
                ..Default::default()
            })
        );
        assert_eq!(
            s.trials[0].config.train.opt_d,
            OptimizerConfig::Adam(AdamConfig {
                lr: 0.5,
                ..Default::default()
            })
        );
    }

    #[test]
    fn line_of_finds_nested_and_quoted_keys() {
        let text =
            "[base]\nsteps = 3\n[base.train]\nbatch = 0\n[sweep]\n\"objective.loss\" = [\"x\"]\n";
        assert_eq!(line_of(text, "base.train.batch"), Some(4));
        assert_eq!(line_of(text, "sweep.\"objective.loss\""), Some(6));
        assert_eq!(line_of(text, "base.steps"), Some(2));
    }
}
