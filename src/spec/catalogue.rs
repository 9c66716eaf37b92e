//! What an experiment file may name, for `ganlab list`. A test checks that every name here
//! is accepted by the configuration types, so the list cannot drift from the code.

/// One section of the catalogue: the key that takes the names, and (name, meaning) pairs.
pub struct Section {
    pub title: &'static str,
    pub key: &'static str,
    pub entries: &'static [(&'static str, &'static str)],
}

/// Everything an experiment file can choose.
pub const CATALOGUE: &[Section] = &[
    Section {
        title: "datasets",
        key: "data.kind",
        entries: &[
            ("dirac", "point mass at `at` (the Dirac-GAN's data); 1-D"),
            (
                "mixture1d",
                "`modes` Gaussians evenly in [-spread, spread], std `std`; 1-D",
            ),
            (
                "ring",
                "`modes` Gaussians on a circle of `radius`, std `std`; 2-D",
            ),
            (
                "grid",
                "`side` x `side` Gaussians `spacing` apart around 0, std `std`; 2-D",
            ),
            (
                "swiss_roll",
                "swiss roll with `noise`, scaled by `scale`; 2-D",
            ),
            (
                "regression",
                "pairs (x, f(x) + noise), x in [-range, range], f = linear | quadratic | sin",
            ),
            (
                "csv",
                "rows of the CSV file `path` (header row, numeric columns)",
            ),
            (
                "images",
                "square images from `source`, `size` pixels a side, `channels` 1 or 3, scaled to [-1, 1]",
            ),
        ],
    },
    Section {
        title: "image sources (data.kind = images)",
        key: "data.source",
        entries: &[
            (
                "fashion_mnist",
                "Fashion-MNIST's IDX files in `path` (default: Debian's /usr/share/datasets/fashion-mnist); t10k-* held out",
            ),
            ("mnist", "MNIST's IDX files (plain or .gz) in the folder `path`"),
            (
                "idx",
                "the IDX images file `path` (labels beside it, if any); last tenth held out",
            ),
            (
                "folder",
                "the PNG/JPEG files in `path`, or in its subfolders as labelled classes, scaled and centre-cropped to `size`; last tenth (of each class) held out",
            ),
            (
                "shapes",
                "`count` generated discs, squares, rings and crosses (seed `seed`); last tenth held out",
            ),
        ],
    },
    Section {
        title: "latent priors",
        key: "latent.prior",
        entries: &[
            ("normal", "standard normal"),
            ("uniform", "uniform on [-1, 1]"),
            (
                "mixture",
                "`components` Gaussians of std `std`, means on a circle of radius `spread` (evenly in [-spread, spread] in 1-D)",
            ),
        ],
    },
    Section {
        title: "prior models (skip-GAN: x = P(z) + alpha G(z); `skip.alpha`, `skip.learn_alpha`, `skip.fine_tune`, `skip.fine_tune_lr`)",
        key: "prior_model.kind",
        entries: &[
            ("none", "P(z) = 0: the plain GAN"),
            (
                "pca_gaussian",
                "Gaussian along the data's top `components` principal directions (closed form)",
            ),
            (
                "gmm",
                "Gaussian mixture of `components` fitted by EM (`tol`, `max_iter`, `reg_covar`); needs latent.dim > dim(x)",
            ),
            (
                "autoencoder",
                "MLP auto-encoder (`code_dim`, `depth`, `width`, `activation`) pre-trained for `steps`; P decodes a Gaussian of its codes",
            ),
        ],
    },
    Section {
        title: "generators",
        key: "generator.kind",
        entries: &[
            (
                "mlp",
                "`depth` hidden layers of `width` units, `activation`, linear output",
            ),
            ("dirac", "outputs theta for every z (Dirac-GAN); `init`"),
            (
                "dcgan",
                "image data: z -> linear -> 4x4 transposed convolutions of stride 2 (`norm`, ReLU) -> tanh; `width` channels next to the image, doubling away from it",
            ),
        ],
    },
    Section {
        title: "DCGAN normalisations",
        key: "generator.norm",
        entries: &[
            ("batch", "batch norm on the batch at hand (no running averages)"),
            (
                "layer",
                "each sample over its channels and pixels, scaled per channel (WGAN-GP critics)",
            ),
            ("none", "none (layers keep their biases)"),
        ],
    },
    Section {
        title: "discriminators",
        key: "discriminator.kind",
        entries: &[
            (
                "mlp",
                "`depth` hidden layers of `width` units, `activation`, one linear output",
            ),
            ("linear", "D(x) = psi . x (Dirac-GAN); `init`"),
            (
                "dcgan",
                "image data: 4x4 convolutions of stride 2 (first without `norm`), leaky ReLU 0.2, linear score; `width` channels first, doubling",
            ),
            (
                "ebgan",
                "auto-encoder for objective.loss = ebgan: energy = mean squared reconstruction error; `code_dim`, `width`, and `depth`/`activation` (MLP halves) or `norm` (DCGAN halves on images)",
            ),
        ],
    },
    Section {
        title: "activations",
        key: "generator.activation",
        entries: &[
            ("relu", "max(0, x)"),
            ("leaky_relu", "slope 0.2 below 0"),
            ("tanh", "tanh"),
            ("elu", "ELU, alpha = 1"),
            ("sigmoid", "logistic"),
        ],
    },
    Section {
        title: "losses",
        key: "objective.loss",
        entries: &[
            ("minimax", "original GAN: G minimises -E softplus(D(G(z)))"),
            ("non_saturating", "G minimises E softplus(-D(G(z)))"),
            (
                "wgan_clip",
                "Wasserstein; critic weights clipped to [-clip, clip]",
            ),
            (
                "wgan_gp",
                "Wasserstein with gradient penalty `gp_weight` (exact double backprop)",
            ),
            ("least_squares", "LSGAN (a = 0, b = c = 1)"),
            ("hinge", "hinge loss for D, -E D(G(z)) for G"),
            (
                "ebgan",
                "energy-based: D = E e(x) + E relu(margin - e(G(z))), G = E e(G(z)) + pt_weight * pull-away; needs discriminator.kind = ebgan",
            ),
        ],
    },
    Section {
        title: "regularisers (and `objective.pack = m`: PacGAN, D judges packs of m samples)",
        key: "objective.regulariser",
        entries: &[
            ("none", "no penalty"),
            (
                "r1",
                "(reg_weight/2) E_real |grad_x D|^2 (exact double backprop)",
            ),
            (
                "r2",
                "(reg_weight/2) E_fake |grad_x D|^2 (exact double backprop)",
            ),
        ],
    },
    Section {
        title: "optimisers",
        key: "train.opt_g.kind",
        entries: &[
            ("sgd", "`lr`, `momentum` in (-1, 1), negative allowed"),
            ("adam", "`lr`, `beta1` in (-1, 1), `beta2`, `eps`"),
            ("rmsprop", "`lr`, `alpha`, `eps`"),
        ],
    },
    Section {
        title: "update schemes",
        key: "train.update",
        entries: &[
            ("simultaneous", "both gradients at the same point and batch"),
            (
                "alternating",
                "D first (n_critic times), then G against the new D",
            ),
            (
                "alternating_g_first",
                "G first, then D (n_critic times) against the new G",
            ),
            (
                "extragradient",
                "both players look ahead one step, then update with the gradients there",
            ),
            (
                "consensus",
                "both follow v + gamma J^T v (gamma = train.consensus_weight), exact",
            ),
            (
                "optimistic",
                "p <- p - 2 u_t + u_(t-1): the optimiser's step now, minus the last one",
            ),
            (
                "rk4",
                "the gradient flow by fixed-step RK4, step = train.opt_g.lr (plain SGD, one step size)",
            ),
            (
                "rk45",
                "the gradient flow by adaptive Dormand-Prince 5(4), tolerances train.rtol/atol, first step train.opt_g.lr",
            ),
            (
                "sga",
                "both follow v + lambda A^T v, A = (J - J^T)/2 (lambda = train.sga_weight, signed by alignment if train.sga_align), exact",
            ),
        ],
    },
    Section {
        title: "precisions",
        key: "precision",
        entries: &[("f32", "single"), ("f64", "double")],
    },
    Section {
        title: "backends",
        key: "backend",
        entries: &[
            (
                "cpu",
                "the default: burn's Flex backend in f32, NdArray in f64",
            ),
            (
                "ndarray",
                "NdArray in f32 and f64, to cross-check the default",
            ),
            ("cuda", "NVIDIA GPU; needs a build with --features cuda"),
            (
                "wgpu",
                "any GPU through Vulkan, Metal or DX12 (f32); needs a build with --features wgpu",
            ),
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse;
    use std::path::Path;

    #[test]
    fn every_listed_name_is_accepted() {
        for s in CATALOGUE {
            for (name, _) in s.entries {
                if s.key == "backend" && *name == "cuda" && !cfg!(feature = "cuda") {
                    continue;
                }
                if s.key == "backend" && *name == "wgpu" && !cfg!(feature = "wgpu") {
                    continue;
                }
                let extra = match (s.key, *name) {
                    ("data.kind", "csv") => continue, // needs a file; covered by the end-to-end tests
                    // Sources that read files are covered by the end-to-end tests.
                    ("data.kind", "images") | ("data.source", "fashion_mnist" | "mnist" | "idx" | "folder") => continue,
                    ("data.source", _) => "[base.data]\nkind = \"images\"\n",
                    ("objective.loss", "ebgan") => "[base.discriminator]\nkind = \"ebgan\"\n",
                    ("discriminator.kind", "ebgan") => "[base.objective]\nloss = \"ebgan\"\n",
                    ("generator.kind" | "discriminator.kind", "dcgan") | ("generator.norm", _) => {
                        "[base.data]\nkind = \"images\"\nsource = \"shapes\"\nsize = 16\n\
                         [base.generator]\nkind = \"dcgan\"\n[base.discriminator]\nkind = \"dcgan\"\n"
                    }
                    ("generator.kind", "dirac") | ("discriminator.kind", "linear") => "",
                    ("prior_model.kind", "gmm") => "[base.latent]\ndim = 3\n",
                    ("train.update", "rk4") | ("train.update", "rk45") => {
                        "[base.train]\nopt_g = { kind = \"sgd\", lr = 0.01 }\n\
                         opt_d = { kind = \"sgd\", lr = 0.01 }\n"
                    }
                    _ => "",
                };
                let text = format!(
                    "[sweep]\n\"{}\" = [\"{}\"]\n{extra}\n[study]\nname = \"list\"\n",
                    s.key, name
                );
                if let Err(e) = parse(&text, Path::new("list.toml")) {
                    panic!("{} = {name}: {e}", s.key);
                }
            }
        }
    }
}
