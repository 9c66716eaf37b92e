//! Adversarial losses. D outputs a score t (a logit for the probabilistic losses); both
//! players MINIMISE their own loss (SPEC section 2). With softplus(t) = log(1 + e^t):
//!
//! | loss            | L_D                                            | L_G                    |
//! |-----------------|------------------------------------------------|------------------------|
//! | minimax         | E softplus(-D(x)) + E softplus(D(G(z)))        | -E softplus(D(G(z)))   |
//! | non_saturating  | same                                           | E softplus(-D(G(z)))   |
//! | wgan_clip/_gp   | E D(G(z)) - E D(x)                             | -E D(G(z))             |
//! | least_squares   | E (D(x) - 1)^2 / 2 + E D(G(z))^2 / 2           | E (D(G(z)) - 1)^2 / 2  |
//! | hinge           | E relu(1 - D(x)) + E relu(1 + D(G(z)))         | -E D(G(z))             |
//! | ebgan           | E D(x) + E relu(m - D(G(z)))                   | E D(G(z)) + l_PT f_PT  |
//!
//! For EBGAN, D(x) is the auto-encoder's energy (column 0 of its output rows) and f_PT the
//! pull-away term of the encoder's codes S of the fake rows (the other columns):
//! f_PT = 1 / (n (n - 1)) sum_{i != j} (S_i . S_j / (|S_i| |S_j|))^2.

use burn::tensor::{activation, backend::Backend, Tensor};

use crate::spec::{Loss, ObjectiveConfig};

/// softplus(t) = log(1 + e^t), computed stably as -log_sigmoid(-t).
pub fn softplus<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    activation::log_sigmoid(t.neg()).neg()
}

/// The expectation over rows: the mean over the row dimension (the second last), one value per
/// copy of the leading dimensions (summed over the columns). For one player (rank 2) it is
/// the plain mean, `[1]`; for stacked parameter copies (rank 3, `[copies, n, k]`) it is each
/// copy's own loss, `[copies]`. A backward pass from such a vector seeds every copy with 1, so
/// each copy's gradient is that of its own loss (batched trials read the copies' losses;
/// probes only their gradients).
pub fn row_mean<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, 1> {
    if D == 2 {
        return t.mean_dim(0).sum();
    }
    let dims = t.dims();
    let copies: usize = dims[..D - 2].iter().product();
    t.mean_dim(D - 2).sum_dim(D - 1).reshape([copies])
}

/// D(x) of output rows: the score, or EBGAN's energy (column 0 of `[energy, code]`).
pub fn score<B: Backend, const D: usize>(loss: Loss, out: Tensor<B, D>) -> Tensor<B, D> {
    match loss {
        Loss::Ebgan => out.narrow(D - 1, 0, 1),
        _ => out,
    }
}

/// EBGAN's pull-away term of code rows `[.., n, c]` (one value per leading copy, as
/// [`row_mean`]). Norms get 1e-12 under the root so that a zero code has a gradient.
pub fn pull_away<B: Backend, const D: usize>(codes: Tensor<B, D>) -> Tensor<B, 1> {
    let dims = codes.dims();
    let (n, c) = (dims[D - 2], dims[D - 1]);
    let copies: usize = dims[..D - 2].iter().product();
    let s: Tensor<B, 3> = codes.reshape([copies, n, c]);
    let norms = s.clone().square().sum_dim(2).add_scalar(1e-12).sqrt();
    let unit = s / norms;
    let cos = unit.clone().matmul(unit.swap_dims(1, 2));
    let pairs = (n * (n.max(2) - 1)) as f64;
    if D == 2 {
        let off_diagonal = cos.square().sum() - n as f64;
        return off_diagonal.div_scalar(pairs);
    }
    let per_copy: Tensor<B, 1> = cos.square().sum_dim(2).sum_dim(1).reshape([copies]);
    per_copy.sub_scalar(n as f64).div_scalar(pairs)
}

/// The discriminator's loss (without regularisers) from its outputs on real and fake rows.
pub fn discriminator_loss<B: Backend, const D: usize>(
    o: &ObjectiveConfig,
    d_real: Tensor<B, D>,
    d_fake: Tensor<B, D>,
) -> Tensor<B, 1> {
    match o.loss {
        Loss::Ebgan => {
            let (e_real, e_fake) = (score(o.loss, d_real), score(o.loss, d_fake));
            row_mean(e_real) + row_mean(activation::relu(e_fake.neg().add_scalar(o.margin)))
        }
        Loss::Minimax | Loss::NonSaturating => {
            row_mean(softplus(d_real.neg())) + row_mean(softplus(d_fake))
        }
        Loss::WganClip | Loss::WganGp => row_mean(d_fake) - row_mean(d_real),
        Loss::LeastSquares => {
            (row_mean((d_real - 1.0).square()) + row_mean(d_fake.square())).mul_scalar(0.5)
        }
        Loss::Hinge => {
            row_mean(activation::relu(d_real.neg() + 1.0))
                + row_mean(activation::relu(d_fake + 1.0))
        }
    }
}

/// The generator's loss from the discriminator's outputs on fake rows.
pub fn generator_loss<B: Backend, const D: usize>(
    o: &ObjectiveConfig,
    d_fake: Tensor<B, D>,
) -> Tensor<B, 1> {
    match o.loss {
        Loss::Ebgan => {
            let cols = d_fake.dims()[D - 1];
            let codes = d_fake.clone().narrow(D - 1, 1, cols - 1);
            let energy = row_mean(score(o.loss, d_fake));
            if o.pt_weight > 0.0 {
                energy + pull_away(codes).mul_scalar(o.pt_weight)
            } else {
                energy
            }
        }
        Loss::Minimax => row_mean(softplus(d_fake)).neg(),
        Loss::NonSaturating => row_mean(softplus(d_fake.neg())),
        Loss::WganClip | Loss::WganGp | Loss::Hinge => row_mean(d_fake).neg(),
        Loss::LeastSquares => row_mean((d_fake - 1.0).square()).mul_scalar(0.5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{host, matrix, CpuF64, CPU};

    type B = CpuF64;

    fn ebgan() -> ObjectiveConfig {
        ObjectiveConfig {
            loss: Loss::Ebgan,
            margin: 1.0,
            pt_weight: 0.1,
            ..Default::default()
        }
    }

    #[test]
    fn ebgan_losses_and_the_pull_away_term_follow_their_formulas() {
        // Codes [1, 0], [0, 1], [1, 1]: cosines 0, 1/sqrt 2, 1/sqrt 2; the squares over the
        // 6 ordered pairs sum to 2, so f_PT = 2 / (3 * 2).
        let codes = matrix::<B>(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], 3, 2, &CPU);
        let pt = host(pull_away(codes))[0];
        // (The 1e-12 under each norm's root moves it by about 1e-12.)
        assert!((pt - 1.0 / 3.0).abs() < 1e-10, "{pt}");
        // Rows [energy, code].
        let real = matrix::<B>(vec![0.2, 1.0, 0.0, 0.4, 0.0, 1.0], 2, 3, &CPU);
        let fake = matrix::<B>(
            vec![0.5, 1.0, 0.0, 1.5, 0.0, 1.0, 1.0, 1.0, 1.0],
            3,
            3,
            &CPU,
        );
        // L_D = mean(0.2, 0.4) + mean(relu(1 - 0.5), relu(1 - 1.5), relu(1 - 1.0)).
        let ld = host(discriminator_loss(&ebgan(), real, fake.clone()))[0];
        assert!((ld - (0.3 + 0.5 / 3.0)).abs() < 1e-12, "{ld}");
        // L_G = mean(0.5, 1.5, 1.0) + 0.1 f_PT.
        let lg = host(generator_loss(&ebgan(), fake.clone()))[0];
        assert!((lg - (1.0 + 0.1 / 3.0)).abs() < 1e-10, "{lg}");
        let no_pt = ObjectiveConfig {
            pt_weight: 0.0,
            ..ebgan()
        };
        assert!((host(generator_loss(&no_pt, fake))[0] - 1.0).abs() < 1e-12);
        // Two stacked copies of the same codes.
        let two: Tensor<B, 3> = Tensor::from_data(
            burn::tensor::TensorData::new(
                vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
                [2, 3, 2],
            ),
            &CPU,
        );
        // Stacked copies: each copy's own term.
        let per_copy = host(pull_away(two));
        assert_eq!(per_copy.len(), 2);
        assert!(
            per_copy.iter().all(|v| (v - 1.0 / 3.0).abs() < 1e-10),
            "{per_copy:?}"
        );
    }
}
