//! The report of a study: summary and comparison tables (polars), figures (plotters), one
//! HTML page, and Parquet copies of the per-step tables.
//!
//! It reads only the recorded tables (SPEC section 6), so `ganlab report DIR` re-renders any
//! study, also one copied from another machine or one still running. The report folder is
//! built beside its final place and swapped in at the end, so a failed report never leaves a
//! half-written one behind.

pub mod figures;
pub mod grid;
pub mod html;
pub mod summary;
pub mod tables;
mod trial_figures;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use polars::prelude::*;
use rayon::prelude::*;

use figures::{Chart, Layer, PALETTE};
use summary::{TrialSummary, COMPARED};
use tables::StudyTables;

/// What a report wrote.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    pub dir: PathBuf,
    pub trials: usize,
    pub unfinished: Vec<String>,
    /// Trials with a table that cannot be read: (trial, which file and line, and why).
    pub unreadable: Vec<(String, String)>,
    pub figures: usize,
    pub parquet: Vec<PathBuf>,
}

/// Where the report of the study folder `study` goes by default: `reports/STUDY` beside a
/// `notebooks-data/STUDY` folder (SPEC section 6), else `STUDY/report`.
pub fn default_dir(study: &Path) -> PathBuf {
    let name = study.file_name();
    let parent = study.parent();
    match (name, parent) {
        (Some(name), Some(parent)) if parent.file_name().is_some_and(|p| p == "notebooks-data") => {
            parent
                .parent()
                .unwrap_or(Path::new(""))
                .join("reports")
                .join(name)
        }
        _ => study.join("report"),
    }
}

/// Writes the report of the study folder `study` into `to`, and the Parquet tables into
/// `study`.
pub fn make(study: &Path, to: &Path) -> anyhow::Result<ReportOutcome> {
    make_live(study, to, None)
}

/// [`make`], for `ganlab report --watch`: while trials are unfinished the page reloads itself
/// every `refresh_s` seconds.
pub fn make_live(study: &Path, to: &Path, refresh_s: Option<u64>) -> anyhow::Result<ReportOutcome> {
    check_destination(study, to)?;
    let tables = StudyTables::read(study)?;
    let mut outcome = render(&tables, to, refresh_s)
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", study.display()))?;
    outcome.parquet = write_parquet(&tables)?;
    Ok(outcome)
}

/// Writes one report comparing the trials of several study folders into `to` (`ganlab
/// compare`): keyed by `study` and by every key swept in any of them (see
/// [`StudyTables::merged`]). The study folders are only read.
pub fn compare(studies: &[PathBuf], to: &Path) -> anyhow::Result<ReportOutcome> {
    anyhow::ensure!(
        studies.len() >= 2,
        "`ganlab compare` takes two or more study folders"
    );
    for s in studies {
        check_destination(s, to)?;
    }
    let all = studies
        .iter()
        .map(|s| StudyTables::read(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    render(&StudyTables::merged(all), to, None)
}

/// The report of `tables` (summary, comparisons, figures, index.html), built aside and then
/// swapped into `to` whole.
fn render(
    tables: &StudyTables,
    to: &Path,
    refresh_s: Option<u64>,
) -> anyhow::Result<ReportOutcome> {
    let summaries = summary::summarise_study(tables)
        .map_err(|e| anyhow::anyhow!("cannot summarise the trials: {e}"))?;

    let staging = staging_dir(to);
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    // Built in the staging folder; a failure (a full disk, say) removes it again.
    let built = (|| -> anyhow::Result<_> {
        fs::create_dir_all(staging.join("trials"))
            .with_context(|| format!("cannot create {}", staging.display()))?;
        fs::write(
            staging.join(REPORT_MARKER),
            "This folder is a ganlab report: `ganlab report` replaces it whole.\n",
        )
        .with_context(|| format!("cannot write {}", staging.join(REPORT_MARKER).display()))?;

        // A swept key named like a summary column (`steps`, say) gets its own column name.
        let swept_columns: Vec<String> = tables
            .swept_keys
            .iter()
            .map(|k| summary::swept_column(k))
            .collect();
        let mut summary_df = summary::summary_frame(&swept_columns, &summaries)?;
        write_csv(&staging.join("summary.csv"), &mut summary_df)?;

        // Group by each swept key, or by nothing (one row) when only seeds vary.
        let mut keys: Vec<String> = swept_columns.clone();
        if keys.is_empty() {
            summary_df.with_column(Column::new(
                "study".into(),
                vec![tables.name.clone(); summary_df.height()],
            ))?;
            keys.push("study".into());
        }
        let mut comparisons = Vec::new();
        let mut stems: Vec<String> = Vec::new();
        for key in &keys {
            let mut df = summary::compare(&summary_df, key)
                .map_err(|e| anyhow::anyhow!("cannot compare the trials by `{key}`: {e}"))?;
            // Keys that differ only in characters a file name cannot hold get numbered.
            let mut stem = format!("compare-{}", file_stem(key));
            if stems.contains(&stem) {
                stem = format!("{stem}-{}", stems.len() + 1);
            }
            stems.push(stem.clone());
            write_csv(&staging.join(format!("{stem}.csv")), &mut df)?;
            let chart_file = comparison_figure(&staging, &stem, key, &summaries, &summary_df)?;
            comparisons.push((key.clone(), stem, df, chart_file));
        }

        // Per-trial figures, trials in parallel; each trial's figures are independent files.
        let per_trial: Vec<anyhow::Result<Vec<(String, String)>>> = tables
            .trials
            .par_iter()
            .map(|t| {
                let dir = staging.join("trials").join(&t.name);
                fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                copy_grids(t, &dir)?;
                trial_figures::draw(t, &dir)
            })
            .collect();
        let mut trial_figs = Vec::new();
        for r in per_trial {
            trial_figs.push(r?);
        }

        let page = index_html(
            tables,
            &summaries,
            &summary_df,
            &comparisons,
            &trial_figs,
            refresh_s,
        );
        fs::write(staging.join("index.html"), page)
            .with_context(|| format!("cannot write {}", staging.join("index.html").display()))?;
        Ok((comparisons, trial_figs))
    })();
    let (comparisons, trial_figs) = match built {
        Ok(b) => b,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };

    // Swap the new report in: the old one is moved aside first and removed last, so some
    // complete report is in place at every moment.
    if let Some(p) = to.parent() {
        fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
    }
    let old = with_suffix(to, ".old");
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("cannot remove {}", old.display()))?;
    }
    if to.exists() {
        fs::rename(to, &old).with_context(|| format!("cannot move {} aside", to.display()))?;
    }
    fs::rename(&staging, to)
        .with_context(|| format!("cannot move {} to {}", staging.display(), to.display()))?;
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("cannot remove {}", old.display()))?;
    }

    let figures = comparisons.iter().filter(|c| c.3.is_some()).count()
        + trial_figs.iter().map(Vec::len).sum::<usize>();
    Ok(ReportOutcome {
        dir: to.to_path_buf(),
        trials: tables.trials.len(),
        unreadable: tables
            .trials
            .iter()
            .filter(|t| t.status == "unreadable")
            .map(|t| (t.name.clone(), t.error.clone().unwrap_or_default()))
            .collect(),
        unfinished: summaries
            .iter()
            .filter(|s| s.outcome == "unfinished")
            .map(|s| s.trial.clone())
            .collect(),
        figures,
        parquet: Vec::new(),
    })
}

/// Where an image trial's last sample grid and its animation go in its report folder.
const GRID_FILE: &str = "samples.png";
const ANIMATION_FILE: &str = "samples.gif";
const REAL_FILE: &str = "real.png";

/// Copies an image trial's last sample grid and its animation into its report folder.
fn copy_grids(t: &tables::TrialTables, dir: &Path) -> anyhow::Result<()> {
    let copy = |from: &Path, name: &str| -> anyhow::Result<()> {
        fs::copy(from, dir.join(name))
            .map(|_| ())
            .with_context(|| format!("cannot copy {} into the report", from.display()))
    };
    if let Some((_, last)) = t.grids.last() {
        copy(last, GRID_FILE)?;
    }
    if let Some(gif) = &t.animation {
        copy(gif, ANIMATION_FILE)?;
    }
    if let Some(real) = &t.real_grid {
        copy(real, REAL_FILE)?;
    }
    Ok(())
}

/// The last sample grid of an image trial as a figure (linking to its animation, if any).
fn grid_figure(o: &mut String, t: &tables::TrialTables, caption: &str) {
    let Some((step, _)) = t.grids.last() else {
        return;
    };
    let folder: Vec<String> = t.name.split('/').map(html::url_segment).collect();
    let base = format!("trials/{}", folder.join("/"));
    let img = format!("<img src=\"{base}/{GRID_FILE}\" alt=\"samples\" loading=\"lazy\">");
    let linked = match t.animation {
        Some(_) => format!("<a href=\"{base}/{ANIMATION_FILE}\">{img}</a>"),
        None => img,
    };
    let more = if t.animation.is_some() {
        "; click for the whole trial"
    } else {
        ""
    };
    let _ = writeln!(
        o,
        "<figure class=\"grid\">{linked}<figcaption>{} (step {step}{more})</figcaption></figure>",
        html::escape(caption)
    );
}

/// A key as a file-name part: letters, digits, `.`, `-`, `_`; anything else becomes `_`.
fn file_stem(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn staging_dir(to: &Path) -> PathBuf {
    with_suffix(to, ".partial")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// The file that marks a folder as a report ganlab made: only such a folder is ever replaced.
pub const REPORT_MARKER: &str = ".ganlab-report";

/// The report replaces its folder: refuse a folder that holds the study (or is inside it as
/// something other than a report) and a non-empty one that ganlab did not make as a report.
fn check_destination(study: &Path, to: &Path) -> anyhow::Result<()> {
    let abs = |p: &Path| std::path::absolute(p).map(|a| normalise(&a));
    let (s, t) = (abs(study)?, abs(to)?);
    if to.file_name().is_none() || s.starts_with(&t) {
        anyhow::bail!(
            "{}: the report folder would replace the study {}; pick another --to",
            to.display(),
            study.display()
        );
    }
    if to.exists() {
        let empty = fs::read_dir(to)
            .with_context(|| format!("cannot read {}", to.display()))?
            .next()
            .is_none();
        if !empty && !to.join(REPORT_MARKER).is_file() {
            anyhow::bail!(
                "{}: exists and is not a ganlab report (no {REPORT_MARKER} in it, so ganlab did \
                 not make it); the report replaces its whole folder, so pick an empty or new \
                 one with --to",
                to.display()
            );
        }
    }
    Ok(())
}

/// A path without `.` and `..` components (lexically).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn write_csv(path: &Path, df: &mut DataFrame) -> anyhow::Result<()> {
    let mut f =
        fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    CsvWriter::new(&mut f)
        .include_header(true)
        .finish(df)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// One panel per compared figure that some trial has (at most six, the divergence step first
/// where a trial diverged): every trial's value at its key value (seeds side by side), and the
/// min-max range over seeds.
fn comparison_figure(
    dir: &Path,
    stem: &str,
    key: &str,
    rows: &[TrialSummary],
    summary_df: &DataFrame,
) -> anyhow::Result<Option<String>> {
    let values: Vec<String> = summary_df
        .column(key)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect();
    let mut categories: Vec<String> = Vec::new();
    for v in &values {
        if !categories.contains(v) {
            categories.push(v.clone());
        }
    }
    let category: Vec<usize> = values
        .iter()
        .map(|v| categories.iter().position(|x| x == v).unwrap_or(0))
        .collect();
    let diverged_at = |r: &TrialSummary| r.diverged_at.map(|d| d as f64);
    let mut panels: Vec<(&str, Box<dyn Fn(&TrialSummary) -> Option<f64>>)> = Vec::new();
    if rows.iter().any(|r| r.diverged_at.is_some()) {
        panels.push(("diverged_at", Box::new(diverged_at)));
    }
    for f in COMPARED {
        panels.push((f, Box::new(move |r: &TrialSummary| r.figure(f))));
    }
    let mut charts = Vec::new();
    for (f, get) in panels {
        let mut per_cat: Vec<Vec<f64>> = vec![Vec::new(); categories.len()];
        for (r, &c) in rows.iter().zip(&category) {
            if let Some(y) = get(r) {
                per_cat[c].push(y);
            }
        }
        // The trials of one value side by side left of its position, their range right of it.
        let points: Vec<(f64, f64)> = per_cat
            .iter()
            .enumerate()
            .flat_map(|(c, ys)| {
                let n = ys.len() as f64;
                ys.iter()
                    .enumerate()
                    .map(move |(j, y)| (c as f64 - 0.3 + 0.4 * (j as f64 + 0.5) / n, *y))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let ranges = per_cat
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(c, v)| {
                let finite = v.iter().copied().filter(|x| x.is_finite());
                let lo = finite.clone().fold(f64::INFINITY, f64::min);
                let hi = finite.fold(f64::NEG_INFINITY, f64::max);
                (c as f64 + 0.2, lo, hi)
            })
            .filter(|r| r.1.is_finite())
            .collect();
        charts.push(Chart {
            title: f.to_string(),
            x_label: key.to_string(),
            y_label: f.to_string(),
            categories: Some(categories.clone()),
            layers: vec![
                // No legend: it would cover points; the page's caption explains the marks.
                Layer::Ranges {
                    label: String::new(),
                    color: RGBColorExt::grey(),
                    ranges,
                },
                Layer::Points {
                    label: String::new(),
                    color: PALETTE[0],
                    points,
                    size: 4,
                },
            ],
            ..Default::default()
        });
        if charts.len() == 6 {
            break;
        }
    }
    if charts.is_empty() {
        return Ok(None);
    }
    Chart::save_grid(&charts, dir, stem)?;
    Ok(Some(stem.to_string()))
}

/// Named colours the palette lacks.
struct RGBColorExt;
impl RGBColorExt {
    fn grey() -> plotters::style::RGBColor {
        plotters::style::RGBColor(170, 170, 170)
    }
}

/// A constant column of `n` rows holding a swept value: a number where `numeric` (the seed
/// as an integer), else its text.
fn swept_parquet_column(name: &str, value: &str, numeric: &bool, n: usize) -> Column {
    if *numeric && name == "seed" {
        Column::new(
            name.into(),
            vec![value.parse::<i64>().unwrap_or_default(); n],
        )
    } else if *numeric {
        Column::new(
            name.into(),
            vec![value.parse::<f64>().unwrap_or(f64::NAN); n],
        )
    } else {
        Column::new(name.into(), vec![value.to_string(); n])
    }
}

/// Parquet copies of the per-step tables, one file per table with `study`, `trial`, the swept
/// keys and `seed` first, written into the study folder (`metrics.parquet`, ...).
fn write_parquet(s: &StudyTables) -> anyhow::Result<Vec<PathBuf>> {
    type Pick = fn(&tables::TrialTables) -> Option<&DataFrame>;
    let kinds: [(&str, Pick); 6] = [
        ("metrics", |t| t.metrics.as_ref()),
        ("modes", |t| t.modes.as_ref()),
        ("quality", |t| t.quality.as_ref()),
        ("eigen", |t| t.eigen.as_ref()),
        ("path_angle", |t| t.path_angle.as_ref()),
        ("samples", |t| t.samples.as_ref()),
    ];
    // A swept key is a number column when every trial's value is a number.
    let is_number = |v: &str| v.parse::<f64>().is_ok();
    let numeric: Vec<bool> = (0..s.swept_keys.len())
        .map(|i| {
            s.trials
                .iter()
                .all(|t| t.swept.get(i).is_some_and(|v| is_number(v)))
        })
        .collect();
    let seeds_numeric = s.trials.iter().all(|t| t.seed.parse::<i64>().is_ok());
    let mut written = Vec::new();
    for (name, pick) in kinds {
        let mut frames = Vec::new();
        for t in &s.trials {
            let Some(df) = pick(t) else { continue };
            if df.width() == 0 {
                continue;
            }
            let mut df = df.clone();
            // Study, trial, every swept key and the seed first, so a notebook groups the rows
            // of many trials (and of several studies' files) without joining trials.csv.
            let n = df.height();
            let mut front = vec![
                Column::new("study".into(), vec![s.name.clone(); n]),
                Column::new("trial".into(), vec![t.name.clone(); n]),
            ];
            for (i, key) in s.swept_keys.iter().enumerate() {
                let value = t.swept.get(i).cloned().unwrap_or_default();
                let name = if df.column(key).is_ok() {
                    format!("swept:{key}")
                } else {
                    key.clone()
                };
                front.push(swept_parquet_column(&name, &value, &numeric[i], n));
            }
            front.push(swept_parquet_column("seed", &t.seed, &seeds_numeric, n));
            for (i, c) in front.into_iter().enumerate() {
                df.insert_column(i, c)?;
            }
            // Steps and indices are integers in the notebooks.
            for c in ["step", "index"] {
                if let Ok(col) = df.column(c) {
                    let cast = col.cast(&DataType::Int64)?;
                    df.replace(c, cast)?;
                }
            }
            frames.push(df);
        }
        let path = s.dir.join(format!("{name}.parquet"));
        if frames.is_empty() {
            if path.exists() {
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
            continue;
        }
        let mut all = polars::functions::concat_df_diagonal(&frames)?;
        let tmp = s.dir.join(format!("{name}.parquet.partial"));
        let f =
            fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        ParquetWriter::new(f)
            .finish(&mut all)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot rename {}", tmp.display()))?;
        written.push(path);
    }
    Ok(written)
}

type Comparison = (String, String, DataFrame, Option<String>);

fn index_html(
    s: &StudyTables,
    rows: &[TrialSummary],
    summary_df: &DataFrame,
    comparisons: &[Comparison],
    trial_figs: &[Vec<(String, String)>],
    refresh_s: Option<u64>,
) -> String {
    use html::escape;
    let mut o = String::new();
    let running = rows.iter().any(|r| r.outcome == "unfinished");
    let refresh = match refresh_s {
        Some(n) if running => format!("<meta http-equiv=\"refresh\" content=\"{n}\">"),
        _ => String::new(),
    };
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
         <title>{name} - ganlab report</title><style>{style}</style></head><body>\n\
         <h1>Study {name}</h1>\n",
        name = escape(&s.name),
        style = html::STYLE
    );
    if !s.description.is_empty() {
        let _ = writeln!(o, "<p>{}</p>", escape(&s.description));
    }
    let count = |o: &str| rows.iter().filter(|r| r.outcome == o).count();
    let _ = write!(o, "<p>{} trials:", rows.len());
    for name in summary::OUTCOMES {
        let n = count(name);
        if n > 0 {
            let _ = write!(o, " <span class=\"{name}\">{n} {name}</span>");
        }
    }
    o.push_str(".</p>\n");
    let unfinished: Vec<&TrialSummary> =
        rows.iter().filter(|r| r.outcome == "unfinished").collect();
    if !unfinished.is_empty() {
        let _ = write!(
            o,
            "<p class=\"unfinished\">This study is not finished: {} of {} trials have no final \
             result yet (their figures show what was recorded so far):",
            unfinished.len(),
            rows.len()
        );
        for r in &unfinished {
            let _ = write!(o, " {} ({})", escape(&r.trial), escape(&r.status));
        }
        o.push_str(".</p>\n");
    }
    o.push_str("<details><summary>Configuration (the experiment file)</summary><pre>");
    o.push_str(&escape(&s.experiment));
    o.push_str("</pre></details>\n");

    o.push_str(
        "<h2>Comparison</h2>\n<p>Per swept key: trials per value and their outcomes, the \
                divergence step over the diverged trials, and mean / min / max over seeds of \
                the final figures (outcomes and figures are defined in the section Reports of \
                the ganlab README). Tables as CSV: ",
    );
    for (key, stem, _, _) in comparisons {
        let _ = write!(o, "<a href=\"{stem}.csv\">{}</a> ", escape(key));
    }
    o.push_str("</p>\n");
    for (key, stem, df, chart) in comparisons {
        let _ = writeln!(o, "<h3>By <code>{}</code></h3>", escape(key));
        html::table(&mut o, df, false);
        // Image studies: the last grid of the first trial of each value.
        if let Some(k) = s
            .swept_keys
            .iter()
            .position(|sk| summary::swept_column(sk) == *key)
        {
            let mut seen: Vec<&str> = Vec::new();
            let mut grids = String::new();
            for t in &s.trials {
                let v = t.swept[k].as_str();
                if !t.grids.is_empty() && !seen.contains(&v) {
                    seen.push(v);
                    grid_figure(&mut grids, t, &format!("{key} = {v}: {}", t.name));
                }
            }
            if !grids.is_empty() {
                let _ = writeln!(o, "<div class=\"grids\">{grids}</div>");
            }
        }
        if chart.is_some() {
            html::figures(
                &mut o,
                "",
                &[(
                    stem.clone(),
                    format!(
                        "final figures by {key}: a dot per trial, the grey bar spans the seeds"
                    ),
                )],
            );
        }
    }

    o.push_str(
        "<h2>Trials</h2>\n<p>One row per trial (<a href=\"summary.csv\">summary.csv</a>).</p>\n",
    );
    html::table(&mut o, summary_df, true);

    o.push_str("<h2>Figures per trial</h2>\n");
    for (t, figs) in s.trials.iter().zip(trial_figs) {
        let r = rows.iter().find(|r| r.trial == t.name);
        let outcome = r.map(|r| r.outcome).unwrap_or("");
        let _ = write!(
            o,
            "<h3 id=\"trial-{id}\">{name} <span class=\"{outcome}\">{outcome}</span>",
            id = html::url_segment(&t.name),
            name = escape(&t.name)
        );
        if let Some(d) = t.diverged_at {
            let _ = write!(o, " at step {d}");
        }
        o.push_str("</h3>\n");
        if !s.swept_keys.is_empty() {
            o.push_str("<p>");
            for (k, v) in s.swept_keys.iter().zip(&t.swept) {
                let _ = write!(o, "<code>{}</code> = {} &nbsp; ", escape(k), escape(v));
            }
            let _ = write!(o, "seed = {}</p>\n", escape(&t.seed));
        }
        if let Some(e) = &t.error {
            let _ = writeln!(o, "<p class=\"failed\">error: {}</p>", escape(e));
        }
        if figs.is_empty() {
            o.push_str("<p>No recorded tables.</p>\n");
        }
        // A compared trial is `STUDY/TRIAL`, in folders of those names: each part is encoded.
        let folder: Vec<String> = t.name.split('/').map(html::url_segment).collect();
        html::figures(&mut o, &format!("trials/{}", folder.join("/")), figs);
        grid_figure(&mut o, t, "samples of the evaluation latents");
        if t.real_grid.is_some() {
            let _ = write!(
                o,
                "<figure class=\"grid\"><img src=\"trials/{}/{REAL_FILE}\" alt=\"real images\" \
                 loading=\"lazy\"><figcaption>real images</figcaption></figure>\n",
                folder.join("/")
            );
        }
    }
    o.push_str("</body></html>\n");
    o
}
