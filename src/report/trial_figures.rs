//! The figures of one trial, from its recorded tables only.

use std::path::Path;

use polars::prelude::*;

use super::figures::{ramp, Chart, Layer, PALETTE};
use super::tables::{column, has, series, TrialTables};

/// Snapshot panels of generated samples: at most this many steps, evenly spread.
const SAMPLE_PANELS: usize = 4;

fn line(label: &str, i: usize, points: Vec<(f64, f64)>) -> Layer {
    Layer::Line {
        label: label.to_string(),
        color: PALETTE[i % PALETTE.len()],
        points,
    }
}

fn chart(title: &str, x: &str, y: &str, layers: Vec<Layer>) -> Chart {
    Chart {
        title: title.to_string(),
        x_label: x.to_string(),
        y_label: y.to_string(),
        layers,
        ..Default::default()
    }
}

/// Covered over total (`covered`, `total` columns) and a percentage column (`share`) over
/// training, both as fractions of one axis, with room above 1 for the legend: mode coverage
/// of mixtures and class coverage of images.
fn coverage_chart(
    df: &DataFrame,
    title: &str,
    [covered, total, share]: [&str; 3],
    [covered_label, share_label]: [&str; 2],
) -> Chart {
    let frac: Vec<(f64, f64)> = match (column(df, "step"), column(df, covered), column(df, total)) {
        (Ok(s), Ok(c), Ok(n)) => s
            .iter()
            .zip(c.iter().zip(&n))
            .filter_map(|(s, (c, n))| Some((s.as_ref()?.to_owned(), c.as_ref()? / n.as_ref()?)))
            .collect(),
        _ => Vec::new(),
    };
    let shares = series(df, "step", share)
        .into_iter()
        .map(|(s, percent)| (s, percent / 100.0))
        .collect();
    let mut c = chart(
        title,
        "step",
        "fraction",
        vec![line(covered_label, 0, frac), line(share_label, 1, shares)],
    );
    c.y_span = Some((-0.02, 1.35));
    c
}

/// Modes covered and high-quality samples over training (the table records `high_quality`
/// in percent).
fn mode_coverage_chart(modes: &DataFrame) -> Chart {
    coverage_chart(
        modes,
        "Mode coverage",
        ["modes_covered", "modes_total", "high_quality"],
        ["modes covered / modes", "high-quality samples / samples"],
    )
}

/// Image sample quality over training: classes covered and confident predictions as
/// fractions, and the Fréchet distance to the held-out images beside them.
fn image_quality_charts(q: &DataFrame) -> Vec<Chart> {
    let coverage = coverage_chart(
        q,
        "Class coverage",
        ["classes_covered", "classes_total", "confident_share"],
        [
            "classes covered / classes",
            "confident predictions / images",
        ],
    );
    let frechet = chart(
        "Fréchet distance to held-out images",
        "step",
        "squared distance (classifier features)",
        vec![line(
            "frechet_distance",
            0,
            series(q, "step", "frechet_distance"),
        )],
    );
    vec![coverage, frechet]
}

/// Draws every figure the trial's tables allow into `dir`; returns (file stem, caption).
pub fn draw(t: &TrialTables, dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut save = |charts: Vec<Chart>, stem: &str, caption: &str| -> anyhow::Result<()> {
        let charts: Vec<Chart> = charts.into_iter().filter(|c| !c.is_empty()).collect();
        if !charts.is_empty() {
            Chart::save_grid(&charts, dir, stem)?;
            out.push((stem.to_string(), caption.to_string()));
        }
        Ok(())
    };
    if let Some(m) = &t.metrics {
        let names: Vec<String> = m.get_column_names().iter().map(|s| s.to_string()).collect();
        let mut losses = vec![
            line("loss_g", 0, series(m, "step", "loss_g")),
            line("loss_d", 1, series(m, "step", "loss_d")),
        ];
        if has(m, "wasserstein") {
            losses.push(line("wasserstein", 2, series(m, "step", "wasserstein")));
        }
        save(
            vec![chart("Losses", "step", "loss", losses)],
            "losses",
            "losses of both players",
        )?;

        let norms = |player: &str| {
            let total = format!("grad_norm_{player}");
            let mut layers = vec![line(&total, 0, series(m, "step", &total))];
            let prefix = format!("{total}/");
            for (i, c) in names.iter().filter(|c| c.starts_with(&prefix)).enumerate() {
                layers.push(line(&c[prefix.len()..], i + 1, series(m, "step", c)));
            }
            let mut c = chart(
                &format!(
                    "Gradient norms, {}",
                    if player == "g" {
                        "generator"
                    } else {
                        "discriminator"
                    }
                ),
                "step",
                "Euclidean norm",
                layers,
            );
            c.log_y = true;
            c
        };
        save(
            vec![norms("g"), norms("d")],
            "grad_norms",
            "gradient norms per player and per parameter tensor",
        )?;
        save(
            vec![chart(
                "Discriminator outputs",
                "step",
                "mean D(x)",
                vec![
                    line("D(real)", 0, series(m, "step", "d_real")),
                    line("D(fake)", 1, series(m, "step", "d_fake")),
                ],
            )],
            "d_outputs",
            "D(real) and D(fake)",
        )?;
        if has(m, "dist_to_equilibrium") {
            let mut c = chart(
                "Distance to the equilibrium",
                "step",
                "||(theta, psi) - (theta*, psi*)||",
                vec![line(
                    "distance",
                    0,
                    series(m, "step", "dist_to_equilibrium"),
                )],
            );
            c.log_y = true;
            save(vec![c], "distance", "distance to the equilibrium")?;
        }
        if has(m, "eig_max_re") {
            save(stability(m), "stability", "stability figures over training")?;
        }
        if has(m, "hess_g_min") {
            let layers = ["hess_g_min", "hess_g_max", "hess_d_min", "hess_d_max"]
                .iter()
                .enumerate()
                .map(|(i, c)| line(c, i, series(m, "step", c)))
                .collect();
            save(
                vec![chart(
                    "Player Hessian extremes",
                    "step",
                    "eigenvalue",
                    layers,
                )],
                "hessians",
                "extreme eigenvalues of H_GG and H_DD",
            )?;
        }
    }
    if let Some(modes) = &t.modes {
        save(
            vec![mode_coverage_chart(modes)],
            "modes",
            "mode coverage over training",
        )?;
    }
    if let Some(q) = &t.quality {
        save(
            image_quality_charts(q),
            "quality",
            "image sample quality over training (the data set's classifier on the generated images)",
        )?;
    }
    if let Some(s) = &t.samples {
        save(
            samples(s)?,
            "samples",
            "generated samples (colour) over real samples (grey)",
        )?;
    }
    if let Some(e) = &t.eigen {
        let lrs = t
            .metrics
            .as_ref()
            .map(|m| {
                let first = |c: &str| series(m, "step", c).first().map(|p| p.1);
                (first("lr_g"), first("lr_d"))
            })
            .unwrap_or((None, None));
        if let Some(c) = eigen_plane(e, lrs)? {
            save(
                vec![c],
                "eigenvalues",
                "game-Jacobian eigenvalues per probe, coloured by step; circle: the boundary \
                 |1 - eta lambda| = 1 of plain gradient descent's stability region at the \
                 trial's learning rates (exact for simultaneous SGD with lr_g = lr_d; a guide \
                 for other optimisers)",
            )?;
        }
        let one_rate = match lrs {
            (Some(g), Some(d)) if g == d => Some(g),
            _ => None,
        };
        let charts = scheme_planes(e, one_rate)?;
        if !charts.is_empty() {
            save(
                charts,
                "scheme_operator",
                "the update scheme's own matrices: its field matrix (J + gamma J^T J for \
                 consensus, J + lambda A^T J for SGA) over J's eigenvalues (grey), and the \
                 eigenvalues of its linearised step map (one training step with plain steps of \
                 the trial's learning rates), inside the unit circle where the scheme converges \
                 locally; grey: plain simultaneous gradient descent's 1 - eta lambda",
            )?;
        }
    }
    if let Some(p) = &t.path_angle {
        let mut norms = chart(
            "Field norm along the path",
            "alpha",
            "norm",
            vec![
                line("||v||", 0, series(p, "alpha", "norm")),
                line("||v_G||", 1, series(p, "alpha", "norm_g")),
                line("||v_D||", 2, series(p, "alpha", "norm_d")),
            ],
        );
        norms.log_y = true;
        save(
            vec![
                chart(
                    "Path-angle",
                    "alpha (0 = start, 1 = end)",
                    "cos(v, end - start)",
                    vec![line("cosine", 0, series(p, "alpha", "cosine"))],
                ),
                norms,
            ],
            "path_angle",
            "path-angle between the start and end of training",
        )?;
    }
    Ok(out)
}

fn stability(m: &DataFrame) -> Vec<Chart> {
    let mut ratio = chart(
        "max |imag| / |real|",
        "step",
        "ratio",
        vec![line(
            "max |im|/|re|",
            0,
            series(m, "step", "eig_max_im_over_re"),
        )],
    );
    ratio.log_y = true;
    let radius = series(m, "step", "gd_spectral_radius");
    let one: Vec<(f64, f64)> = match (radius.first(), radius.last()) {
        (Some(a), Some(b)) => vec![(a.0, 1.0), (b.0, 1.0)],
        _ => Vec::new(),
    };
    let rotation = series(m, "step", "rotation");
    let class = series(m, "step", "point_class");
    let mechanics = (!rotation.is_empty() || !class.is_empty()).then(|| {
        chart(
            "Mechanics: |A|/|J| and point class (0 not stable, 1 stable saddle, 2 local Nash)",
            "step",
            "value",
            vec![
                line("|A|_F / |J|_F", 0, rotation),
                line("point class", 1, class),
            ],
        )
    });
    let mut charts = vec![
        chart(
            "Real parts",
            "step",
            "real part",
            vec![
                line("max re", 0, series(m, "step", "eig_max_re")),
                line("min re", 1, series(m, "step", "eig_min_re")),
            ],
        ),
        ratio,
        chart(
            "Spectral radius of I - H J",
            "step",
            "radius",
            vec![line("radius", 0, radius), line("1", 7, one)],
        ),
        chart(
            "Unstable fraction",
            "step",
            "fraction with re < 0",
            vec![line(
                "fraction",
                0,
                series(m, "step", "eig_unstable_fraction"),
            )],
        ),
    ];
    charts.extend(mechanics);
    charts
}

/// The game-Jacobian eigenvalues of every probe, coloured from the first probe (dark) to the
/// last (yellow), and the boundaries |1 - eta lambda| = 1 of gradient descent's stability
/// region for the generator's and the discriminator's step sizes.
fn eigen_plane(e: &DataFrame, lrs: (Option<f64>, Option<f64>)) -> anyhow::Result<Option<Chart>> {
    let probes = eigenvalues_by_step(e, "game")?;
    if probes.is_empty() {
        return Ok(None);
    }
    let mut layers = ramp_layers(&probes, "step ");
    let mut etas: Vec<(&str, f64)> = Vec::new();
    if let Some(g) = lrs.0.filter(|v| *v > 0.0) {
        etas.push(("lr_g", g));
    }
    if let Some(d) = lrs.1.filter(|v| *v > 0.0) {
        if etas.first().map(|e| e.1) != Some(d) {
            etas.push(("lr_d", d));
        }
    }
    for (i, (name, eta)) in etas.into_iter().enumerate() {
        layers.push(Layer::Circle {
            label: format!("|1 - eta lambda| = 1, eta = {name} = {eta}"),
            color: PALETTE[3 + i],
            center: (1.0 / eta, 0.0),
            radius: 1.0 / eta,
        });
    }
    Ok(Some(Chart {
        title: "Game-Jacobian eigenvalues".into(),
        x_label: "real part".into(),
        y_label: "imaginary part".into(),
        with_origin: true,
        layers,
        ..Default::default()
    }))
}

/// The eigenvalues of `matrix` (a value of eigen.csv's `matrix` column) at each probed step,
/// as (re, im) points, in step order.
fn eigenvalues_by_step(e: &DataFrame, matrix: &str) -> anyhow::Result<Vec<(f64, Vec<(f64, f64)>)>> {
    if !has(e, "matrix") || !has(e, "re") {
        return Ok(Vec::new());
    }
    let rows = e.filter(&e.column("matrix")?.str()?.equal(matrix))?;
    let steps = column(&rows, "step")?;
    let re = column(&rows, "re")?;
    let im = column(&rows, "im")?;
    let mut distinct: Vec<f64> = steps.iter().flatten().copied().collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    Ok(distinct
        .into_iter()
        .map(|s| {
            let points = steps
                .iter()
                .zip(re.iter().zip(&im))
                .filter(|(st, _)| **st == Some(s))
                .filter_map(|(_, (r, i))| Some((r.as_ref()?.to_owned(), i.as_ref()?.to_owned())))
                .collect();
            (s, points)
        })
        .collect())
}

/// One layer of points per probe, coloured from the first probe (dark) to the last (yellow),
/// the first and last labelled `prefix` + step.
fn ramp_layers(probes: &[(f64, Vec<(f64, f64)>)], prefix: &str) -> Vec<Layer> {
    let last = probes.len().saturating_sub(1);
    probes
        .iter()
        .enumerate()
        .map(|(k, (s, points))| Layer::Points {
            label: if k == 0 || k == last {
                format!("{prefix}{s}")
            } else {
                String::new()
            },
            color: ramp(if last == 0 {
                1.0
            } else {
                k as f64 / last as f64
            }),
            points: points.clone(),
            size: 3,
        })
        .collect()
}

/// The update scheme's own matrices (see `probe::operator`), each with the plain one: the
/// eigenvalues of the scheme's field matrix (consensus, SGA) over J's in grey, and those of
/// its step map per probe over the unit circle (and, with one step size, plain simultaneous
/// gradient descent's 1 - eta lambda in grey).
pub fn scheme_planes(e: &DataFrame, lr: Option<f64>) -> anyhow::Result<Vec<Chart>> {
    let mut charts = Vec::new();
    let game = eigenvalues_by_step(e, "game")?;
    let grey = |label: &str, points: Vec<(f64, f64)>| Layer::Points {
        label: label.into(),
        color: PALETTE[7],
        points,
        size: 2,
    };
    let scheme = eigenvalues_by_step(e, "scheme")?;
    if !scheme.is_empty() {
        let mut layers = vec![grey("J", game.iter().flat_map(|g| g.1.clone()).collect())];
        layers.extend(ramp_layers(&scheme, "scheme field, step "));
        charts.push(Chart {
            title: "The scheme's field matrix and J".into(),
            x_label: "real part".into(),
            y_label: "imaginary part".into(),
            with_origin: true,
            layers,
            ..Default::default()
        });
    }
    let step = eigenvalues_by_step(e, "step_map")?;
    if !step.is_empty() {
        let mut layers = Vec::new();
        if let Some(eta) = lr {
            let plain = game
                .iter()
                .flat_map(|g| g.1.iter().map(|(re, im)| (1.0 - eta * re, -eta * im)))
                .collect();
            layers.push(grey("plain simultaneous GD, 1 - eta lambda", plain));
        }
        layers.extend(ramp_layers(&step, "step map, step "));
        layers.push(Layer::Circle {
            label: "|mu| = 1".into(),
            color: PALETTE[3],
            center: (0.0, 0.0),
            radius: 1.0,
        });
        charts.push(Chart {
            title: "Step-map eigenvalues".into(),
            x_label: "real part".into(),
            y_label: "imaginary part".into(),
            with_origin: true,
            layers,
            ..Default::default()
        });
    }
    Ok(charts)
}

/// Panels of generated samples at up to [`SAMPLE_PANELS`] recorded steps (first, last and
/// evenly between), each over the real samples.
fn samples(s: &DataFrame) -> anyhow::Result<Vec<Chart>> {
    if !has(s, "x0") || !has(s, "x1") || !has(s, "real") {
        return Ok(Vec::new());
    }
    let step = column(s, "step")?;
    let real = column(s, "real")?;
    let x0 = column(s, "x0")?;
    let x1 = column(s, "x1")?;
    let pick = |want_real: bool, at: Option<f64>| -> Vec<(f64, f64)> {
        (0..step.len())
            .filter(|&i| (real[i] == Some(1.0)) == want_real)
            .filter(|&i| at.is_none() || step[i] == at)
            .filter_map(|i| Some((x0[i]?, x1[i]?)))
            .collect()
    };
    let real_points = pick(true, None);
    let mut steps: Vec<f64> = (0..step.len())
        .filter(|&i| real[i] != Some(1.0))
        .filter_map(|i| step[i])
        .collect();
    steps.sort_by(f64::total_cmp);
    steps.dedup();
    let chosen: Vec<f64> = if steps.len() <= SAMPLE_PANELS {
        steps
    } else {
        let n = steps.len() - 1;
        (0..SAMPLE_PANELS)
            .map(|k| steps[k * n / (SAMPLE_PANELS - 1)])
            .collect()
    };
    Ok(chosen
        .into_iter()
        .map(|at| Chart {
            title: format!("Samples at step {at}"),
            x_label: "x0".into(),
            y_label: "x1".into(),
            layers: vec![
                Layer::Points {
                    label: "real".into(),
                    color: plotters::style::RGBColor(190, 190, 190),
                    points: real_points.clone(),
                    size: 2,
                },
                Layer::Points {
                    label: "generated".into(),
                    color: PALETTE[0],
                    points: pick(false, Some(at)),
                    size: 2,
                },
            ],
            ..Default::default()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_coverage_draws_both_curves_as_fractions_below_the_legend() {
        let modes = df!(
            "step" => [0.0, 100.0, 200.0],
            "modes_covered" => [2.0, 6.0, 8.0],
            "modes_total" => [8.0, 8.0, 8.0],
            "high_quality" => [12.5, 80.0, 100.0],
            "reverse_kl" => [1.0, 0.2, 0.0],
        )
        .unwrap();
        let c = mode_coverage_chart(&modes);
        let mut curves = Vec::new();
        for l in &c.layers {
            if let Layer::Line { points, .. } = l {
                curves.push(points.iter().map(|p| p.1).collect::<Vec<_>>());
            }
        }
        assert_eq!(curves, [vec![0.25, 0.75, 1.0], vec![0.125, 0.8, 1.0]]);
        let (lo, hi) = c.y_span.unwrap();
        assert!(
            lo <= 0.0 && hi > 1.2,
            "no room for the legend above 1: {hi}"
        );
    }
}
