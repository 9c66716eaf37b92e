//! One summary row per trial, the outcome it is classed as, and the comparison across trials
//! grouped by each swept key (polars expressions and group-bys).

use polars::prelude::*;

use super::tables::{StudyTables, TrialTables};

/// Outcomes, in the order the comparison tables list them.
pub const OUTCOMES: [&str; 8] = [
    "converged",
    "oscillating",
    "trained",
    "collapsed",
    "diverged",
    "failed",
    "unfinished",
    "unreadable",
];

/// A distance or gradient norm that ends below this fraction of its start has converged.
pub const CONVERGED_RATIO: f64 = 0.1;

/// A mixture's generator whose samples last moved less than this many high-quality radii
/// between two mode-coverage measurements has converged (see `ModeCoverage::sample_motion`).
pub const SETTLED_MOTION: f64 = 1.0;

/// Numeric columns of `summary.csv`, after the text ones; a trial without the data for one
/// leaves it empty.
pub const FIGURES: [&str; 36] = [
    "final_loss_g",
    "final_loss_d",
    "final_d_real",
    "final_d_fake",
    "final_grad_norm_g",
    "final_grad_norm_d",
    "final_wasserstein",
    "loss_d_tail_std",
    "grad_norm_ratio",
    "dist_start",
    "dist_final",
    "dist_ratio",
    "modes_covered",
    "modes_total",
    "high_quality",
    "reverse_kl",
    "sample_motion",
    "classes_covered",
    "classes_total",
    "confident_share",
    "class_reverse_kl",
    "frechet_distance",
    "final_drift",
    "eig_max_re",
    "eig_min_re",
    "eig_max_im_over_re",
    "eig_unstable_fraction",
    "gd_spectral_radius",
    "step_radius",
    "scheme_eig_min_re",
    "rotation",
    "hamiltonian",
    "probes_not_stable",
    "probes_stable_saddle",
    "probes_local_nash",
    "path_min_cosine",
];

/// The figures the comparison tables aggregate (where some trial has them), most telling
/// first: the comparison figure shows the first six present.
pub const COMPARED: [&str; 14] = [
    "modes_covered",
    "high_quality",
    "classes_covered",
    "frechet_distance",
    "confident_share",
    "sample_motion",
    "dist_ratio",
    "final_drift",
    "eig_max_re",
    "gd_spectral_radius",
    "final_loss_d",
    "grad_norm_ratio",
    "final_loss_g",
    "eig_max_im_over_re",
];

/// The column of `summary.csv` holding the swept key `key`: the key itself, or `swept:KEY`
/// where the key's name is taken by a column of the summary (a sweep over `steps`, say).
pub fn swept_column(key: &str) -> String {
    let taken = ["trial", "seed", "status", "outcome", "steps", "diverged_at"];
    if taken.contains(&key) || FIGURES.contains(&key) {
        format!("swept:{key}")
    } else {
        key.to_string()
    }
}

/// One trial's row of `summary.csv`.
#[derive(Debug, Clone)]
pub struct TrialSummary {
    pub trial: String,
    pub swept: Vec<String>,
    pub seed: String,
    pub status: String,
    pub outcome: &'static str,
    pub steps: Option<u64>,
    pub diverged_at: Option<u64>,
    /// Values of [`FIGURES`], in order; None where the trial has no data for it.
    pub figures: Vec<Option<f64>>,
}

impl TrialSummary {
    pub fn figure(&self, name: &str) -> Option<f64> {
        let i = FIGURES.iter().position(|f| *f == name)?;
        self.figures[i]
    }
}

/// A numeric column, if the table has it.
fn f64s<'a>(df: &'a DataFrame, name: &str) -> Option<&'a Float64Chunked> {
    df.column(name).ok()?.f64().ok()
}

/// No value for NaN (a reduction over no finite number, or a diverged trial's last loss);
/// infinities are kept: they are data (max |im|/|re| of a purely imaginary pair).
fn finite_or_none(v: Option<f64>) -> Option<f64> {
    v.filter(|x| !x.is_nan())
}

/// The last value (a diverged trial's last row holds the NaN or inf that stopped it).
fn last(c: &Float64Chunked) -> Option<f64> {
    c.len().checked_sub(1).and_then(|i| c.get(i))
}

/// The last finite value.
fn last_finite(c: &Float64Chunked) -> Option<f64> {
    c.iter().flatten().filter(|x| x.is_finite()).last()
}

/// The mean of the non-null values, summed in row order: polars' own reductions sum chunk by
/// chunk, and a CSV read in parallel splits its chunks differently from run to run, which
/// changed the last digits of the summary between two reports of the same tables.
fn mean_in_order(c: &Float64Chunked) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in c.iter().flatten() {
        sum += v;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

/// The sample standard deviation (n - 1) of the non-null values, in row order (see
/// [`mean_in_order`]).
fn std_in_order(c: &Float64Chunked) -> Option<f64> {
    let mean = mean_in_order(c)?;
    let (mut sq, mut n) = (0.0, 0usize);
    for v in c.iter().flatten() {
        sq += (v - mean) * (v - mean);
        n += 1;
    }
    (n > 1).then(|| (sq / (n - 1) as f64).sqrt())
}

/// Computes the figures of one trial from its tables.
pub fn summarise(t: &TrialTables) -> PolarsResult<TrialSummary> {
    let mut figures: Vec<Option<f64>> = vec![None; FIGURES.len()];
    let mut set = |name: &str, v: Option<f64>| {
        if let Some(i) = FIGURES.iter().position(|f| *f == name) {
            figures[i] = finite_or_none(v);
        }
    };
    if let Some(m) = &t.metrics {
        for (c, name) in [
            ("loss_g", "final_loss_g"),
            ("loss_d", "final_loss_d"),
            ("d_real", "final_d_real"),
            ("d_fake", "final_d_fake"),
            ("grad_norm_g", "final_grad_norm_g"),
            ("grad_norm_d", "final_grad_norm_d"),
            ("wasserstein", "final_wasserstein"),
        ] {
            set(name, f64s(m, c).and_then(last));
        }
        // Head and tail windows: the first and last tenth of the recorded rows.
        let k = (m.height() / 10).max(1);
        if let Some(d) = f64s(m, "loss_d") {
            set("loss_d_tail_std", std_in_order(&d.tail(Some(k))));
        }
        if let (Some(g), Some(d)) = (f64s(m, "grad_norm_g"), f64s(m, "grad_norm_d")) {
            let total = g + d;
            let ratio = match (
                mean_in_order(&total.tail(Some(k))),
                mean_in_order(&total.head(Some(k))),
            ) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            };
            set("grad_norm_ratio", ratio);
        }
        set("final_drift", f64s(m, "drift").and_then(last_finite));
        if let Some(d) = f64s(m, "dist_to_equilibrium") {
            let (a, b) = (d.get(0), last(d));
            set("dist_start", a);
            set("dist_final", b);
            if let (Some(a), Some(b)) = (a, b) {
                set("dist_ratio", (a > 0.0).then(|| b / a));
            }
        }
        for c in [
            "eig_max_re",
            "eig_min_re",
            "eig_max_im_over_re",
            "eig_unstable_fraction",
            "gd_spectral_radius",
            "step_radius",
            "scheme_eig_min_re",
            "rotation",
            "hamiltonian",
        ] {
            // The final probe's value (at the point training ended) when the trial has one.
            let final_probe = t
                .finals
                .iter()
                .find(|(name, v)| name == c && v.is_finite())
                .map(|(_, v)| *v);
            set(c, final_probe.or_else(|| f64s(m, c).and_then(last_finite)));
        }
    }
    // How many probes found each kind of point: the in-training probes (metrics rows) and the
    // final one (status finals).
    let final_class = t
        .finals
        .iter()
        .find(|(name, v)| name == "point_class" && v.is_finite())
        .map(|(_, v)| *v);
    let classes: Vec<f64> = t
        .metrics
        .as_ref()
        .and_then(|m| f64s(m, "point_class"))
        .map(|c| {
            c.iter()
                .flatten()
                .filter(|x| x.is_finite())
                .collect::<Vec<f64>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain(final_class)
        .collect();
    if !classes.is_empty() {
        for (name, code) in [
            ("probes_not_stable", 0.0),
            ("probes_stable_saddle", 1.0),
            ("probes_local_nash", 2.0),
        ] {
            set(
                name,
                Some(classes.iter().filter(|&&c| c == code).count() as f64),
            );
        }
    }
    if let Some(m) = &t.modes {
        for c in ["modes_covered", "modes_total", "high_quality", "reverse_kl"] {
            set(c, f64s(m, c).and_then(last));
        }
        // The last measured motion (the first measurement has none).
        set(
            "sample_motion",
            f64s(m, "sample_motion").and_then(last_finite),
        );
    }
    if let Some(q) = &t.quality {
        for (c, name) in [
            ("classes_covered", "classes_covered"),
            ("classes_total", "classes_total"),
            ("confident_share", "confident_share"),
            ("reverse_kl", "class_reverse_kl"),
            ("frechet_distance", "frechet_distance"),
        ] {
            set(name, f64s(q, c).and_then(last));
        }
    }
    if let Some(p) = &t.path_angle {
        set("path_min_cosine", f64s(p, "cosine").and_then(|c| c.min()));
    }
    let get = |name: &str| {
        FIGURES
            .iter()
            .position(|f| *f == name)
            .and_then(|i| figures[i])
    };
    let outcome = outcome_of(t, &get);
    Ok(TrialSummary {
        trial: t.name.clone(),
        swept: t.swept.clone(),
        seed: t.seed.clone(),
        status: t.status.clone(),
        outcome,
        steps: t.steps,
        diverged_at: t.diverged_at,
        figures,
    })
}

/// The outcome of a trial (README, "Outcomes"):
/// - `diverged`, `failed`: from the trial's status; `unfinished`: running or never started;
/// - `collapsed`: a mixture whose final mode coverage misses a mode, or labelled images whose
///   final generated set leaves a class without a confident prediction;
/// - `converged`: the distance to the equilibrium (Dirac-GAN) ended below 10% of its start;
///   on a mixture, the generated samples of the evaluation latents last moved less than a
///   mode's high-quality radius between two measurements (`sample_motion` < 1); otherwise the
///   gradient norm of both players over the last tenth of the rows ended below 10% of its
///   start;
/// - `oscillating`: a Dirac-GAN whose distance to the equilibrium did not shrink so;
/// - `trained`: ran to the end without any of the above.
pub fn outcome_of(t: &TrialTables, get: &dyn Fn(&str) -> Option<f64>) -> &'static str {
    match t.status.as_str() {
        "diverged" => return "diverged",
        "failed" => return "failed",
        "unreadable" => return "unreadable",
        "done" => {}
        _ => return "unfinished",
    }
    if let (Some(c), Some(n)) = (get("modes_covered"), get("modes_total")) {
        if c < n {
            return "collapsed";
        }
    }
    // Images: a class of the data set that no generated image is confidently predicted as.
    if let (Some(c), Some(n)) = (get("classes_covered"), get("classes_total")) {
        if c < n {
            return "collapsed";
        }
    }
    if let Some(r) = get("dist_ratio") {
        return if r < CONVERGED_RATIO {
            "converged"
        } else {
            "oscillating"
        };
    }
    // Mixtures: whether the generated samples have settled (minibatch gradient norms do not
    // fall to a tenth on them, so the gradient rule says little there).
    if let Some(m) = get("sample_motion") {
        return if m < SETTLED_MOTION {
            "converged"
        } else {
            "trained"
        };
    }
    match get("grad_norm_ratio") {
        Some(r) if r < CONVERGED_RATIO => "converged",
        _ => "trained",
    }
}

/// The summary of every trial, in `trials.csv` order.
pub fn summarise_study(s: &StudyTables) -> PolarsResult<Vec<TrialSummary>> {
    s.trials.iter().map(summarise).collect()
}

/// `summary.csv` as a frame: `trial`, the swept keys, `seed`, `status`, `outcome`, `steps`,
/// `diverged_at`, then [`FIGURES`].
pub fn summary_frame(keys: &[String], rows: &[TrialSummary]) -> PolarsResult<DataFrame> {
    let text = |name: &str, f: &dyn Fn(&TrialSummary) -> String| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<String>>())
    };
    let mut cols = vec![text("trial", &|r| r.trial.clone())];
    for (i, k) in keys.iter().enumerate() {
        cols.push(text(k, &|r| r.swept.get(i).cloned().unwrap_or_default()));
    }
    cols.push(text("seed", &|r| r.seed.clone()));
    cols.push(text("status", &|r| r.status.clone()));
    cols.push(text("outcome", &|r| r.outcome.to_string()));
    cols.push(Column::new(
        "steps".into(),
        rows.iter().map(|r| r.steps).collect::<Vec<Option<u64>>>(),
    ));
    cols.push(Column::new(
        "diverged_at".into(),
        rows.iter()
            .map(|r| r.diverged_at)
            .collect::<Vec<Option<u64>>>(),
    ));
    for (i, f) in FIGURES.iter().enumerate() {
        cols.push(Column::new(
            (*f).into(),
            rows.iter()
                .map(|r| r.figures[i])
                .collect::<Vec<Option<f64>>>(),
        ));
    }
    DataFrame::new(rows.len(), cols)
}

/// The comparison table of one swept key: one row per value (first-seen order) with the
/// number of trials, how many ended in each outcome, the divergence step (mean, min, max
/// over the diverged trials) and mean / min / max over seeds of the [`COMPARED`] figures
/// that some trial has. Nulls (no value) are left out of every statistic.
pub fn compare(summary: &DataFrame, key: &str) -> PolarsResult<DataFrame> {
    let groups = summary.partition_by_stable([key], true)?;
    let compared: Vec<&str> = COMPARED
        .into_iter()
        .filter(|f| summary.column(f).is_ok_and(|c| c.null_count() < c.len()))
        .collect();
    let mut keys: Vec<String> = Vec::new();
    let mut trials: Vec<u32> = Vec::new();
    let mut counts: Vec<Vec<u32>> = vec![Vec::new(); OUTCOMES.len()];
    let mut stats: Vec<Vec<Option<f64>>> = vec![Vec::new(); 3 * (1 + compared.len())];
    for g in &groups {
        keys.push(g.column(key)?.str()?.get(0).unwrap_or("").to_string());
        trials.push(g.height() as u32);
        let outcome = g.column("outcome")?.str()?;
        for (i, o) in OUTCOMES.iter().enumerate() {
            counts[i].push(outcome.iter().filter(|v| *v == Some(*o)).count() as u32);
        }
        let diverged_at = g.column("diverged_at")?.cast(&DataType::Float64)?;
        let mut columns = vec![diverged_at.f64()?.clone()];
        for f in &compared {
            columns.push(g.column(f)?.f64()?.clone());
        }
        for (j, c) in columns.iter().enumerate() {
            stats[3 * j].push(mean_in_order(c));
            stats[3 * j + 1].push(c.min());
            stats[3 * j + 2].push(c.max());
        }
    }
    let mut cols = vec![
        Column::new(key.into(), keys),
        Column::new("trials".into(), trials),
    ];
    for (o, c) in OUTCOMES.iter().zip(counts) {
        cols.push(Column::new((*o).into(), c));
    }
    let names = std::iter::once("diverged_at").chain(compared.iter().copied());
    for (j, name) in names.enumerate() {
        for (k, stat) in ["mean", "min", "max"].iter().enumerate() {
            cols.push(Column::new(
                format!("{name}_{stat}").into(),
                stats[3 * j + k].clone(),
            ));
        }
    }
    DataFrame::new(groups.len(), cols)
}
