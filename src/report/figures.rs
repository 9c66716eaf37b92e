//! Figures: a small chart description drawn by plotters into PNG and SVG.
//!
//! Every figure of the report is a [`Chart`] of layers (lines, points, circles, bars) on
//! linear axes; a log-scale axis is drawn as log10 of the values with labels written back
//! as powers of ten. Text uses DejaVu Sans compiled into the binary (the `dejavu` crate,
//! rendered by ab_glyph), so no system font is needed.

use std::path::Path;
use std::sync::Once;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

/// Pixel size of every figure.
pub const SIZE: (u32, u32) = (800, 520);

/// Longest line drawn: longer series are thinned to about this many points (every k-th
/// point and the last), which a figure 800 pixels wide cannot tell apart.
const MAX_LINE_POINTS: usize = 2000;

/// One thing drawn on a chart.
#[derive(Debug, Clone)]
pub enum Layer {
    Line {
        label: String,
        color: RGBColor,
        points: Vec<(f64, f64)>,
    },
    Points {
        label: String,
        color: RGBColor,
        points: Vec<(f64, f64)>,
        size: u32,
    },
    /// A circle's outline; it does not widen the axes.
    Circle {
        label: String,
        color: RGBColor,
        center: (f64, f64),
        radius: f64,
    },
    /// Vertical segments (x, low, high), e.g. the spread over seeds.
    Ranges {
        label: String,
        color: RGBColor,
        ranges: Vec<(f64, f64, f64)>,
    },
}

/// A chart with axes, title and legend.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Draw y on a log10 scale (non-positive values are left out).
    pub log_y: bool,
    /// Names of the integer x positions 0, 1, .. of a categorical axis.
    pub categories: Option<Vec<String>>,
    /// Keep the origin inside the axes (eigenvalue planes).
    pub with_origin: bool,
    /// A fixed y range instead of one fitted to the values (fractions: room above 1 keeps the
    /// legend, drawn at the upper right, off the curves).
    pub y_span: Option<(f64, f64)>,
    pub layers: Vec<Layer>,
}

/// A palette readable in colour and in grey.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Colour of position `t` in [0, 1] on a dark-blue to yellow ramp (close to viridis).
pub fn ramp(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 4] = [
        (68.0, 1.0, 84.0),
        (49.0, 104.0, 142.0),
        (53.0, 183.0, 121.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

static FONT: Once = Once::new();

/// Registers the embedded font as plotters' "sans-serif" (once per process).
fn register_font() {
    FONT.call_once(|| {
        for (style, bytes) in [
            (FontStyle::Normal, dejavu::sans::regular()),
            (FontStyle::Bold, dejavu::sans::bold()),
        ] {
            // The font is compiled in and known to parse; a failure would show as missing
            // text, not as a crash.
            let _ = plotters::style::register_font("sans-serif", style, bytes);
        }
    });
}

impl Chart {
    /// Whether the chart has anything to draw.
    pub fn is_empty(&self) -> bool {
        self.layers.iter().all(|l| match l {
            Layer::Line { points, .. } | Layer::Points { points, .. } => points.is_empty(),
            Layer::Circle { .. } => true,
            Layer::Ranges { ranges, .. } => ranges.is_empty(),
        })
    }

    /// Writes `STEM.png` and `STEM.svg` into `dir`; returns the two file names.
    pub fn save(&self, dir: &Path, stem: &str) -> anyhow::Result<[String; 2]> {
        Chart::save_grid(std::slice::from_ref(self), dir, stem)
    }

    /// Writes the charts side by side (two per row) as `STEM.png` and `STEM.svg`.
    pub fn save_grid(charts: &[Chart], dir: &Path, stem: &str) -> anyhow::Result<[String; 2]> {
        register_font();
        let cols = charts.len().min(2).max(1);
        let rows = charts.len().div_ceil(cols).max(1);
        // A panel of a grid is smaller than a figure of its own.
        let (pw, ph) = if charts.len() == 1 { SIZE } else { (600, 400) };
        let size = (pw * cols as u32, ph * rows as u32);
        let png = format!("{stem}.png");
        let svg = format!("{stem}.svg");
        fn draw_all<DB: DrawingBackend>(
            charts: &[Chart],
            root: &DrawingArea<DB, Shift>,
            rows: usize,
            cols: usize,
        ) -> anyhow::Result<()> {
            root.fill(&WHITE)
                .map_err(|e| anyhow!("cannot draw a figure: {e:?}"))?;
            for (chart, area) in charts.iter().zip(root.split_evenly((rows, cols))) {
                chart.draw(&area)?;
            }
            Ok(())
        }
        let png_path = dir.join(&png);
        {
            let root = BitMapBackend::new(&png_path, size).into_drawing_area();
            draw_all(charts, &root, rows, cols)?;
            root.present()
                .map_err(|e| anyhow!("cannot write {}: {e}", png_path.display()))?;
        }
        let svg_path = dir.join(&svg);
        {
            let root = SVGBackend::new(&svg_path, size).into_drawing_area();
            draw_all(charts, &root, rows, cols)?;
            root.present()
                .map_err(|e| anyhow!("cannot write {}: {e}", svg_path.display()))?;
        }
        Ok([png, svg])
    }

    /// A layer's points as drawn (log-transformed, thinned).
    fn drawn(&self, points: &[(f64, f64)], thin: bool) -> Vec<(f64, f64)> {
        let mut out: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|&(x, y)| {
                let y = if self.log_y {
                    (y > 0.0).then(|| y.log10())?
                } else {
                    y
                };
                (x.is_finite() && y.is_finite()).then_some((x, y))
            })
            .collect();
        if thin && out.len() > MAX_LINE_POINTS {
            let k = out.len().div_ceil(MAX_LINE_POINTS);
            let last = *out.last().unwrap_or(&(0.0, 0.0));
            out = out.into_iter().step_by(k).collect();
            if out.last() != Some(&last) {
                out.push(last);
            }
        }
        out
    }

    /// Axis ranges covering every drawn value, padded by 5%.
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for l in &self.layers {
            match l {
                Layer::Line { points, .. } | Layer::Points { points, .. } => {
                    for (x, y) in self.drawn(points, false) {
                        xs.push(x);
                        ys.push(y);
                    }
                }
                Layer::Ranges { ranges, .. } => {
                    for &(x, lo, hi) in ranges {
                        for (x, y) in self.drawn(&[(x, lo), (x, hi)], false) {
                            xs.push(x);
                            ys.push(y);
                        }
                    }
                }
                Layer::Circle { .. } => {}
            }
        }
        if self.with_origin {
            xs.push(0.0);
            ys.push(0.0);
        }
        if let Some(c) = &self.categories {
            xs.push(-0.5);
            xs.push(c.len() as f64 - 0.5);
        }
        let span = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if !lo.is_finite() || !hi.is_finite() {
                return (0.0, 1.0);
            }
            let pad = if hi > lo {
                0.05 * (hi - lo)
            } else if lo != 0.0 {
                0.5 * lo.abs()
            } else {
                1.0
            };
            (lo - pad, hi + pad)
        };
        let (x0, x1) = span(&xs);
        let (y0, y1) = self.y_span.unwrap_or_else(|| span(&ys));
        if self.categories.is_some() {
            ((-0.5, x1.max(0.5)), (y0, y1))
        } else {
            ((x0, x1), (y0, y1))
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("cannot draw a figure: {e:?}");
        root.fill(&WHITE).map_err(err)?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        let log_y = self.log_y;
        let (x_span, y_span) = (x1 - x0, y1 - y0);
        let y_fmt = move |v: &f64| {
            if log_y {
                two_digits(10f64.powf(*v))
            } else {
                short(*v, y_span)
            }
        };
        let cats = self.categories.clone();
        let x_fmt = move |v: &f64| match &cats {
            Some(c) => {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < c.len() {
                    c[i as usize].clone()
                } else {
                    String::new()
                }
            }
            None => short(*v, x_span),
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(self.x_label.as_str())
            .y_desc(if self.log_y {
                format!("{} (log scale)", self.y_label)
            } else {
                self.y_label.clone()
            })
            .label_style(("sans-serif", 14))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .light_line_style(RGBColor(235, 235, 235));
        if let Some(c) = &self.categories {
            mesh.x_labels(c.len() * 2 + 1);
        }
        mesh.draw().map_err(err)?;

        let mut labelled = false;
        for layer in &self.layers {
            match layer {
                Layer::Line {
                    label,
                    color,
                    points,
                } => {
                    let pts = self.drawn(points, true);
                    let s = chart
                        .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                        .map_err(err)?;
                    if !label.is_empty() {
                        let c = *color;
                        s.label(label.as_str()).legend(move |(x, y)| {
                            PathElement::new([(x, y), (x + 18, y)], c.stroke_width(2))
                        });
                        labelled = true;
                    }
                }
                Layer::Points {
                    label,
                    color,
                    points,
                    size,
                } => {
                    let pts = self.drawn(points, false);
                    let c = *color;
                    let r = *size;
                    let s = chart
                        .draw_series(pts.into_iter().map(|p| Circle::new(p, r, c.filled())))
                        .map_err(err)?;
                    if !label.is_empty() {
                        s.label(label.as_str())
                            .legend(move |(x, y)| Circle::new((x + 9, y), r.max(3), c.filled()));
                        labelled = true;
                    }
                }
                Layer::Circle {
                    label,
                    color,
                    center,
                    radius,
                } => {
                    let arcs = arcs_inside(*center, *radius, (x0, x1), (y0, y1));
                    let c = *color;
                    let mut first = true;
                    for arc in arcs.into_iter().filter(|a| a.len() > 1) {
                        let s = chart
                            .draw_series(LineSeries::new(arc, c.stroke_width(2)))
                            .map_err(err)?;
                        if first && !label.is_empty() {
                            s.label(label.as_str()).legend(move |(x, y)| {
                                PathElement::new([(x, y), (x + 18, y)], c.stroke_width(2))
                            });
                            labelled = true;
                        }
                        first = false;
                    }
                }
                Layer::Ranges {
                    label,
                    color,
                    ranges,
                } => {
                    let c = *color;
                    let segs: Vec<Vec<(f64, f64)>> = ranges
                        .iter()
                        .map(|&(x, lo, hi)| self.drawn(&[(x, lo), (x, hi)], false))
                        .filter(|s| s.len() == 2)
                        .collect();
                    let s = chart
                        .draw_series(
                            segs.into_iter()
                                .map(|s| PathElement::new(s, c.stroke_width(3))),
                        )
                        .map_err(err)?;
                    if !label.is_empty() {
                        s.label(label.as_str()).legend(move |(x, y)| {
                            PathElement::new([(x, y), (x + 18, y)], c.stroke_width(3))
                        });
                        labelled = true;
                    }
                }
            }
        }
        if labelled {
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 13))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}

/// The parts of a circle inside the window [x0, x1] x [y0, y1], as polylines. A small step
/// size makes the stability circle huge and inside the axes close to a straight line, so
/// points are placed along the window (the circle solved for y at sampled x and for x at
/// sampled y), not evenly in angle, then ordered by angle and split where the circle leaves
/// the window.
fn arcs_inside(
    (cx, cy): (f64, f64),
    r: f64,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Vec<Vec<(f64, f64)>> {
    if !(r > 0.0 && r.is_finite()) {
        return Vec::new();
    }
    let n = 800;
    let mut pts: Vec<(f64, f64)> = Vec::new();
    for i in 0..=n {
        let x = x0 + (x1 - x0) * i as f64 / n as f64;
        let y = y0 + (y1 - y0) * i as f64 / n as f64;
        let dy = (r * r - (x - cx) * (x - cx)).sqrt();
        let dx = (r * r - (y - cy) * (y - cy)).sqrt();
        if dy.is_finite() {
            pts.extend([(x, cy + dy), (x, cy - dy)]);
        }
        if dx.is_finite() {
            pts.extend([(cx + dx, y), (cx - dx, y)]);
        }
    }
    let inside = |p: &(f64, f64)| p.0 >= x0 && p.0 <= x1 && p.1 >= y0 && p.1 <= y1;
    pts.retain(inside);
    let angle = |p: &(f64, f64)| (p.1 - cy).atan2(p.0 - cx);
    pts.sort_by(|a, b| angle(a).total_cmp(&angle(b)));
    // Consecutive points farther apart than a fifth of the window lie on different arcs.
    let gap = 0.2 * (x1 - x0).hypot(y1 - y0);
    let mut arcs: Vec<Vec<(f64, f64)>> = Vec::new();
    for p in pts {
        match arcs.last_mut() {
            Some(a)
                if a.last()
                    .is_some_and(|q| (q.0 - p.0).hypot(q.1 - p.1) <= gap) =>
            {
                a.push(p)
            }
            _ => arcs.push(vec![p]),
        }
    }
    // Angles wrap at -pi = pi: an arc across that cut comes out as a last and a first part.
    if arcs.len() > 1 {
        let joined = match (arcs.last().and_then(|a| a.last()), arcs[0].first()) {
            (Some(q), Some(p)) => (q.0 - p.0).hypot(q.1 - p.1) <= gap,
            _ => false,
        };
        if joined {
            let first = arcs.remove(0);
            if let Some(last) = arcs.last_mut() {
                last.extend(first);
            }
        }
    }
    arcs
}

/// A tick label on an axis spanning `span`: enough decimals to tell ticks apart, scientific
/// where plain would be long, and 0 for the rounding residue of a tick at zero.
fn short(v: f64, span: f64) -> String {
    let a = v.abs();
    if a == 0.0 || a <= 1e-9 * span.abs() {
        return "0".into();
    }
    if a >= 1e5 || (a < 1e-3 && span.abs() < 1e-2) {
        return format!("{v:.2e}");
    }
    let decimals = (2.0 - span.abs().max(1e-12).log10().floor()).clamp(0.0, 12.0) as usize;
    trim(format!("{v:.decimals$}"))
}

/// A positive value (a log-scale tick) to about two significant digits.
fn two_digits(x: f64) -> String {
    if !(1e-3..1e5).contains(&x) {
        return format!("{x:.1e}");
    }
    let decimals = (1.0 - x.log10().floor()).max(0.0) as usize;
    trim(format!("{x:.decimals$}"))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_ends_and_clamps() {
        assert_eq!(ramp(0.0), RGBColor(68, 1, 84));
        assert_eq!(ramp(1.0), RGBColor(253, 231, 37));
        assert_eq!(ramp(7.0), ramp(1.0));
        assert_eq!(ramp(f64::NAN), ramp(0.0));
    }

    #[test]
    fn a_huge_circle_through_the_window_is_one_arc_on_the_circle() {
        // |1 - eta lambda| = 1 for eta = 1e-4: centre 1e4, radius 1e4, through the origin.
        let arcs = arcs_inside((1e4, 0.0), 1e4, (-1.0, 2.0), (-1.0, 1.0));
        assert_eq!(arcs.len(), 1);
        assert!(arcs[0].len() > 100);
        for (x, y) in &arcs[0] {
            assert!(((x - 1e4).hypot(*y) - 1e4).abs() < 1e-6);
            assert!(*x >= -1.0 && *x <= 2.0 && *y >= -1.0 && *y <= 1.0);
        }
        // A circle inside the window comes out whole; one outside, not at all.
        let whole = arcs_inside((0.0, 0.0), 0.5, (-1.0, 1.0), (-1.0, 1.0));
        assert_eq!(whole.iter().map(Vec::len).sum::<usize>() > 1000, true);
        assert!(arcs_inside((10.0, 10.0), 1.0, (-1.0, 1.0), (-1.0, 1.0)).is_empty());
        assert_eq!(short(-2.2e-16, 2.0), "0");
        assert_eq!(short(0.25, 2.0), "0.25");
        // Ticks of a narrow axis stay apart.
        assert_eq!(short(1.00005, 1e-4), "1.00005");
        assert_eq!(short(250000.0, 1e6), "2.50e5");
        assert_eq!(two_digits(17.06), "17");
        assert_eq!(two_digits(5.48), "5.5");
        assert_eq!(two_digits(0.0123), "0.012");
        assert_eq!(two_digits(1e-6), "1.0e-6");
    }

    #[test]
    fn log_axis_leaves_out_non_positive_values() {
        let c = Chart {
            log_y: true,
            ..Default::default()
        };
        let d = c.drawn(
            &[(0.0, 100.0), (1.0, 0.0), (2.0, -1.0), (3.0, f64::NAN)],
            false,
        );
        assert_eq!(d, vec![(0.0, 2.0)]);
    }

    #[test]
    fn long_lines_are_thinned_but_keep_their_last_point() {
        let c = Chart::default();
        let pts: Vec<(f64, f64)> = (0..10_001).map(|i| (i as f64, 0.0)).collect();
        let d = c.drawn(&pts, true);
        assert!(d.len() <= MAX_LINE_POINTS + 1, "{}", d.len());
        assert_eq!(d.last(), Some(&(10_000.0, 0.0)));
        assert_eq!(d[0], (0.0, 0.0));
    }
}
