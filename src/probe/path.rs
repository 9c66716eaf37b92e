//! Path-angle (Berard et al., ICLR 2020): along the straight line p(alpha) = p0 + alpha (p1 - p0)
//! between two points of training, the cosine between the game vector field v(p(alpha)) and the
//! direction p1 - p0, and the field's norms. A pure rotation around the path shows a cosine near
//! 0; a minimum along it shows the cosine changing sign with a small norm.

use super::field::GameField;

/// One point of the path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathPoint {
    pub alpha: f64,
    /// cos(v, p1 - p0); NaN where v or the direction vanishes.
    pub cosine: f64,
    /// |v|, |grad_theta L_G|, |grad_phi L_D|.
    pub norm: f64,
    pub norm_g: f64,
    pub norm_d: f64,
}

/// Alphas from -0.1 to 1.1 in `points` equal steps (at least 2).
pub fn alphas(points: usize) -> Vec<f64> {
    let points = points.max(2);
    (0..points)
        .map(|i| -0.1 + 1.2 * i as f64 / (points - 1) as f64)
        .collect()
}

/// The path-angle profile between `p0` and `p1` (flat parameters, theta then phi).
pub fn path_angle(field: &GameField, p0: &[f64], p1: &[f64], alphas: &[f64]) -> Vec<PathPoint> {
    let (ng, _, _) = field.dims();
    let dir: Vec<f64> = p1.iter().zip(p0).map(|(b, a)| b - a).collect();
    let dir_norm = dir.iter().map(|x| x * x).sum::<f64>().sqrt();
    let n = p0.len();
    let points: Vec<f64> = alphas
        .iter()
        .flat_map(|&alpha| p0.iter().zip(&dir).map(move |(a, d)| a + alpha * d))
        .collect();
    // All points of a block share one graph (see `GameField::fields`).
    let fields: Vec<f64> = points
        .chunks(n.max(1) * field.block_size())
        .flat_map(|block| super::on_probe_backend!(field, |B, dev| field.fields::<B>(block, dev)))
        .collect();
    alphas
        .iter()
        .enumerate()
        .map(|(i, &alpha)| {
            let v = &fields[i * n..(i + 1) * n];
            let sq = |s: &[f64]| s.iter().map(|x| x * x).sum::<f64>();
            let (g, d) = (sq(&v[..ng]), sq(&v[ng..]));
            let norm = (g + d).sqrt();
            let dot: f64 = v.iter().zip(&dir).map(|(a, b)| a * b).sum();
            let cosine = if norm > 0.0 && dir_norm > 0.0 {
                dot / (norm * dir_norm)
            } else {
                f64::NAN
            };
            PathPoint {
                alpha,
                cosine,
                norm,
                norm_g: g.sqrt(),
                norm_d: d.sqrt(),
            }
        })
        .collect()
}
