//! Reading a study's recorded tables (SPEC section 6) into polars frames.
//!
//! The report sees only these files, never the models, so a study copied from another machine
//! or still being written reports the same way. A running trial's tables are still named
//! `NAME.partial` and may end in a half-written line: that line is dropped.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use polars::prelude::*;

use crate::store::TrialStatus;

/// Everything recorded about one trial.
pub struct TrialTables {
    pub name: String,
    /// Swept values as `trials.csv` holds them, in the study's key order.
    pub swept: Vec<String>,
    pub seed: String,
    /// done, diverged, failed, running, interrupted, missing (listed but never started), or
    /// unreadable (a table of it cannot be read; `error` says which and where).
    pub status: String,
    pub steps: Option<u64>,
    pub diverged_at: Option<u64>,
    pub error: Option<String>,
    /// Some table was read from its `.partial` file.
    pub partial: bool,
    pub metrics: Option<DataFrame>,
    pub modes: Option<DataFrame>,
    /// Image sample quality (`quality.csv`).
    pub quality: Option<DataFrame>,
    pub eigen: Option<DataFrame>,
    pub path_angle: Option<DataFrame>,
    /// The final figures of `status.toml` (those of the last probe come from the point
    /// training ended at, which metrics.csv has no row for).
    pub finals: Vec<(String, f64)>,
    pub samples: Option<DataFrame>,
    /// Sample grids of an image trial (`grids/step-N.png`), in step order.
    pub grids: Vec<(u64, PathBuf)>,
    /// Its animation (`grids/trial.gif`), once the trial has ended.
    pub animation: Option<PathBuf>,
    /// A grid of its real images (`grids/real.png`).
    pub real_grid: Option<PathBuf>,
}

/// A study folder as recorded.
pub struct StudyTables {
    pub dir: PathBuf,
    pub name: String,
    pub description: String,
    /// The experiment file the study came from, verbatim (empty if missing).
    pub experiment: String,
    /// Swept keys other than `seed`, in `trials.csv` column order.
    pub swept_keys: Vec<String>,
    pub trials: Vec<TrialTables>,
}

impl StudyTables {
    /// Reads the study under `dir` (the folder holding `trials.csv`).
    pub fn read(dir: &Path) -> anyhow::Result<StudyTables> {
        let trials_csv = dir.join("trials.csv");
        if !trials_csv.is_file() {
            anyhow::bail!(
                "{}: no trials.csv here; `ganlab report` takes a study folder written by \
                 `ganlab run` (the folder holding trials.csv)",
                dir.display()
            );
        }
        let experiment = fs::read_to_string(dir.join("experiment.toml")).unwrap_or_default();
        let (name, description) = study_meta(&experiment, dir);
        let mut reader = csv::Reader::from_path(&trials_csv)
            .with_context(|| format!("cannot read {}", trials_csv.display()))?;
        let header: Vec<String> = reader
            .headers()
            .with_context(|| format!("{}: cannot read the header", trials_csv.display()))?
            .iter()
            .map(String::from)
            .collect();
        let at = |name: &str| header.iter().position(|h| h == name);
        let (Some(0), Some(seed_col), Some(status_col)) = (at("trial"), at("seed"), at("status"))
        else {
            anyhow::bail!(
                "{}: the header must start with `trial` and hold `seed` and `status`, got {:?}",
                trials_csv.display(),
                header
            );
        };
        let swept_keys = header[1..seed_col].to_vec();
        let mut trials = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let record =
                record.with_context(|| format!("{}: line {}", trials_csv.display(), i + 2))?;
            let field = |c: usize| record.get(c).unwrap_or("").to_string();
            let name = field(0);
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                anyhow::bail!(
                    "{}: line {}: `{}` is not a trial folder name",
                    trials_csv.display(),
                    i + 2,
                    name
                );
            }
            let number = |c: Option<usize>| c.and_then(|c| record.get(c)?.parse::<u64>().ok());
            let mut t = TrialTables {
                swept: (1..seed_col).map(field).collect(),
                seed: field(seed_col),
                status: field(status_col),
                steps: number(at("steps")),
                diverged_at: number(at("diverged_at")),
                error: None,
                partial: false,
                metrics: None,
                modes: None,
                quality: None,
                eigen: None,
                path_angle: None,
                samples: None,
                grids: Vec::new(),
                animation: None,
                real_grid: None,
                finals: Vec::new(),
                name,
            };
            read_trial(&dir.join(&t.name), &mut t)?;
            trials.push(t);
        }
        Ok(StudyTables {
            dir: dir.to_path_buf(),
            name,
            description,
            experiment,
            swept_keys,
            trials,
        })
    }
}

impl StudyTables {
    /// Several studies as one, for `ganlab compare`: trials named `STUDY/TRIAL`, and the keys
    /// `study` then every key swept in any of them. A trial of a study that did not sweep a
    /// key gets the value its resolved configuration (`config.toml`) holds, so trials compare
    /// by what they ran with, whichever study swept it.
    pub fn merged(studies: Vec<StudyTables>) -> StudyTables {
        let mut keys: Vec<String> = vec!["study".into()];
        for s in &studies {
            for k in &s.swept_keys {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        let mut names: Vec<String> = Vec::new();
        let mut trials = Vec::new();
        let mut listed = Vec::new();
        for s in studies {
            // Two studies of one name (the same file run twice, say) are told apart.
            let mut name = s.name.clone();
            let mut n = 2;
            while names.contains(&name) {
                name = format!("{}-{n}", s.name);
                n += 1;
            }
            names.push(name.clone());
            listed.push(format!("{name} ({})", s.dir.display()));
            for mut t in s.trials {
                let config = fs::read_to_string(s.dir.join(&t.name).join("config.toml"))
                    .ok()
                    .and_then(|text| text.parse::<toml::Table>().ok());
                let swept = keys
                    .iter()
                    .map(|k| {
                        if k == "study" {
                            return name.clone();
                        }
                        if let Some(i) = s.swept_keys.iter().position(|sk| sk == k) {
                            return t.swept.get(i).cloned().unwrap_or_default();
                        }
                        config
                            .as_ref()
                            .and_then(|c| value_at(c, k))
                            .unwrap_or_default()
                    })
                    .collect();
                t.swept = swept;
                t.name = format!("{name}/{}", t.name);
                trials.push(t);
            }
        }
        StudyTables {
            dir: PathBuf::new(),
            name: format!("compare: {}", names.join(" vs ")),
            description: format!("Trials of {} studies: {}", names.len(), listed.join("; ")),
            experiment: String::new(),
            swept_keys: keys,
            trials,
        }
    }
}

/// The value of dotted key `key` in a configuration table, written as trials.csv writes
/// swept values (strings bare, anything else as TOML).
fn value_at(table: &toml::Table, key: &str) -> Option<String> {
    let mut parts = key.split('.');
    let mut v = table.get(parts.next()?)?;
    for p in parts {
        v = v.as_table()?.get(p)?;
    }
    Some(match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// `[study] name` and `description` of the experiment file, else the folder's name.
fn study_meta(experiment: &str, dir: &Path) -> (String, String) {
    let folder = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "study".into());
    let Ok(doc) = experiment.parse::<toml::Table>() else {
        return (folder, String::new());
    };
    let study = doc.get("study").and_then(|s| s.as_table());
    let get = |k: &str| study.and_then(|s| s.get(k)).and_then(|v| v.as_str());
    (
        get("name").map(String::from).unwrap_or(folder),
        get("description").unwrap_or("").to_string(),
    )
}

/// Fills the status (from `status.toml`, which is newer than `trials.csv` while a study runs)
/// and the tables of one trial.
fn read_trial(dir: &Path, t: &mut TrialTables) -> anyhow::Result<()> {
    if !dir.is_dir() {
        t.status = "missing".into();
        return Ok(());
    }
    t.grids = super::grid::grid_files(dir);
    t.animation = Some(dir.join("grids").join(super::grid::ANIMATION)).filter(|p| p.is_file());
    t.real_grid = Some(dir.join("grids").join(super::grid::REAL)).filter(|p| p.is_file());
    if let Ok(text) = fs::read_to_string(dir.join("status.toml")) {
        if let Ok(s) = toml::from_str::<TrialStatus>(&text) {
            t.status = s.status.as_str().into();
            t.steps = Some(s.steps);
            t.diverged_at = s.diverged_at;
            t.error = s.error;
            t.finals = s.finals.into_iter().map(|f| (f.name, f.value)).collect();
        }
    }
    let mut partial = false;
    let mut unreadable: Option<String> = None;
    let mut table = |name: &str, text_columns: &[&str]| -> anyhow::Result<Option<DataFrame>> {
        let (path, is_partial) = match find_table(dir, name) {
            Some(found) => found,
            None => return Ok(None),
        };
        partial |= is_partial;
        match read_csv(&path, is_partial, text_columns) {
            // The trial finished between looking and reading: its table has its final name.
            Err(_) if is_partial && !path.exists() => {
                read_csv(&dir.join(name), false, text_columns).map(Some)
            }
            other => other.map(Some),
        }
    };
    // A table that cannot be read marks its trial unreadable; the others are reported.
    let mut read = |name: &str, text_columns: &[&str]| match table(name, text_columns) {
        Ok(df) => df,
        Err(e) => {
            unreadable.get_or_insert_with(|| format!("{e:#}"));
            None
        }
    };
    t.metrics = read("metrics.csv", &[]);
    t.modes = read("modes.csv", &[]);
    t.quality = read("quality.csv", &[]);
    t.eigen = read("eigen.csv", &["matrix", "method"]);
    t.path_angle = read("path_angle.csv", &[]);
    t.samples = read("samples.csv", &[]);
    t.partial = partial;
    if let Some(e) = unreadable {
        t.status = "unreadable".into();
        t.error = Some(e);
        (t.metrics, t.modes, t.quality, t.eigen) = (None, None, None, None);
        (t.path_angle, t.samples) = (None, None);
    }
    Ok(())
}

fn find_table(dir: &Path, name: &str) -> Option<(PathBuf, bool)> {
    let done = dir.join(name);
    if done.is_file() {
        return Some((done, false));
    }
    let partial = dir.join(format!("{name}.partial"));
    partial.is_file().then_some((partial, true))
}

/// The first line of a table that is not a row of `columns` fields with a number in each
/// numeric column, as "FILE:LINE: what is wrong".
fn first_bad_line(path: &Path, bytes: &[u8], header: &[&str], text_columns: &[&str]) -> String {
    let text = String::from_utf8_lossy(bytes);
    for (i, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != header.len() {
            return format!(
                "{}:{}: {} fields where the header has {}",
                path.display(),
                i + 1,
                fields.len(),
                header.len()
            );
        }
        for (f, c) in fields.iter().zip(header) {
            if !text_columns.contains(c) && !f.is_empty() && f.parse::<f64>().is_err() {
                return format!(
                    "{}:{}: column `{c}`: `{f}` is not a number",
                    path.display(),
                    i + 1
                );
            }
        }
    }
    format!("{}: not a table ganlab can read", path.display())
}

/// Reads a recorded table: every column f64 (`NaN` and `inf` as written) but `text_columns`.
/// A partial table loses its last line if that line is unfinished; a table under its final
/// name must end with a whole line (one cut short was truncated, and is refused).
pub fn read_csv(path: &Path, partial: bool, text_columns: &[&str]) -> anyhow::Result<DataFrame> {
    let bytes = table_bytes(path, partial)?;
    let header_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let header = String::from_utf8_lossy(&bytes[..header_end])
        .trim_end()
        .to_string();
    if header.is_empty() {
        return Ok(DataFrame::empty());
    }
    let schema: Schema = header
        .split(',')
        .map(|c| {
            let dtype = if text_columns.contains(&c) {
                DataType::String
            } else {
                DataType::Float64
            };
            Field::new(c.into(), dtype)
        })
        .collect();
    let columns: Vec<&str> = header.split(',').collect();
    // Rows of the wrong length would be read as missing values: they are refused instead.
    let text = String::from_utf8_lossy(&bytes);
    if text
        .lines()
        .skip(1)
        .any(|l| l.split(',').count() != columns.len())
    {
        anyhow::bail!("{}", first_bad_line(path, &bytes, &columns, text_columns));
    }
    let columns: Vec<String> = columns.into_iter().map(String::from).collect();
    CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema)))
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()
        .map_err(|_| {
            // Only on failure is the table read again, to say where.
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            let why = match table_bytes(path, partial) {
                Ok(b) => first_bad_line(path, &b, &columns, text_columns),
                Err(e) => format!("{e:#}"),
            };
            anyhow::anyhow!("{why}")
        })
}

/// The bytes of a recorded table: a partial table without its unfinished last line; a table
/// under its final name refused if its last line is cut short (it was truncated).
fn table_bytes(path: &Path, partial: bool) -> anyhow::Result<Vec<u8>> {
    let mut bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if partial {
        let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(keep);
    } else if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow::bail!(
            "{}:{lines}: the last line is cut short (the table was truncated)",
            path.display()
        );
    }
    Ok(bytes)
}

/// The finite values of a numeric column paired with the `step` column, in row order.
pub fn series(df: &DataFrame, x: &str, y: &str) -> Vec<(f64, f64)> {
    let (Ok(xs), Ok(ys)) = (column(df, x), column(df, y)) else {
        return Vec::new();
    };
    xs.into_iter()
        .zip(ys)
        .filter_map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) if a.is_finite() && b.is_finite() => Some((a, b)),
            _ => None,
        })
        .collect()
}

/// A numeric column as options (null where the CSV cell was empty).
pub fn column(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    Ok(df.column(name)?.f64()?.iter().collect())
}

/// Whether a frame has a column.
pub fn has(df: &DataFrame, name: &str) -> bool {
    df.column(name).is_ok()
}
