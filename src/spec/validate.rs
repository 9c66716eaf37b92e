//! Range checks on a resolved configuration. Each failure is (dotted key, what is allowed).

use super::config::*;

type Check = Result<(), (String, String)>;

fn fail(key: &str, msg: impl Into<String>) -> Check {
    Err((key.to_string(), msg.into()))
}

fn positive(key: &str, v: f64) -> Check {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        fail(key, format!("must be a finite number > 0, got {v}"))
    }
}

fn non_negative(key: &str, v: f64) -> Check {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        fail(key, format!("must be a finite number >= 0, got {v}"))
    }
}

fn finite(key: &str, v: f64) -> Check {
    if v.is_finite() {
        Ok(())
    } else {
        fail(key, format!("must be a finite number, got {v}"))
    }
}

fn open_unit(key: &str, v: f64, lo_closed: bool) -> Check {
    let ok = if lo_closed {
        (0.0..1.0).contains(&v)
    } else {
        v > -1.0 && v < 1.0
    };
    if ok {
        Ok(())
    } else if lo_closed {
        fail(key, format!("must lie in [0, 1), got {v}"))
    } else {
        fail(key, format!("must lie in (-1, 1), got {v}"))
    }
}

fn count(key: &str, v: usize, min: usize, max: usize) -> Check {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        fail(
            key,
            format!("must be an integer in [{min}, {max}], got {v}"),
        )
    }
}

/// Checks every range the code relies on; the first failure is returned.
pub(crate) fn check(c: &TrialConfig) -> Check {
    if c.steps == 0 || c.steps > 1_000_000_000 {
        fail(
            "steps",
            format!("must be an integer in [1, 1000000000], got {}", c.steps),
        )?;
    }
    if c.backend == BackendKind::Cuda && !cfg!(feature = "cuda") {
        fail(
            "backend",
            "`cuda` needs ganlab built with `--features cuda`; allowed here: `cpu`",
        )?;
    }
    if c.backend == BackendKind::Wgpu && !cfg!(feature = "wgpu") {
        fail(
            "backend",
            "`wgpu` needs ganlab built with `--features wgpu`; allowed here: `cpu`",
        )?;
    }
    if c.backend == BackendKind::Wgpu && c.precision == Precision::F64 {
        // WGSL, wgpu's shading language, has no f64.
        fail("precision", "the wgpu backend computes in f32 only (WGSL has no f64); use `f32` with `wgpu`, or `f64` on `cpu`")?;
    }
    if c.backend == BackendKind::Cuda && c.precision == Precision::F64 {
        // Seen on an H100: burn 0.21.0's CUDA matmul rejects f64 operands.
        fail("precision", "burn 0.21.0's CUDA backend has no f64 matrix product; use `f32` with `cuda`, or `f64` on `cpu`")?;
    }
    check_data(&c.data)?;
    count("latent.dim", c.latent.dim, 1, 4096)?;
    if c.latent.prior == Prior::Mixture {
        count("latent.components", c.latent.components, 1, 10_000)?;
        non_negative("latent.spread", c.latent.spread)?;
        positive("latent.std", c.latent.std)?;
    }
    check_prior_model(c)?;
    match &c.generator {
        GeneratorConfig::Mlp(m) => check_mlp("generator", m)?,
        GeneratorConfig::Dirac(s) => finite("generator.init", s.init)?,
        GeneratorConfig::Dcgan(d) => check_dcgan("generator", d, &c.data)?,
    }
    let ebgan_d = matches!(c.discriminator, DiscriminatorConfig::Ebgan(_));
    if (c.objective.loss == Loss::Ebgan) != ebgan_d {
        fail(
            if ebgan_d {
                "objective.loss"
            } else {
                "discriminator.kind"
            },
            "the `ebgan` loss and the `ebgan` (auto-encoder) discriminator go together: \
             its energy is what the loss reads",
        )?;
    }
    if ebgan_d {
        if c.objective.regulariser != Regulariser::None && c.objective.reg_weight > 0.0 {
            fail(
                "objective.regulariser",
                "R1/R2 penalise the gradient of a score; EBGAN's discriminator outputs an energy \
                 and a code: use `none`",
            )?;
        }
        non_negative("objective.margin", c.objective.margin)?;
        non_negative("objective.pt_weight", c.objective.pt_weight)?;
    }
    match &c.discriminator {
        DiscriminatorConfig::Ebgan(e) => {
            count("discriminator.code_dim", e.code_dim, 1, 1 << 16)?;
            count("discriminator.width", e.width, 1, 1 << 16)?;
            count("discriminator.depth", e.depth, 0, 64)?;
            if let DataConfig::Images(images) = &c.data {
                if crate::nets::dcgan::base_side(images.size).1 == 0 {
                    fail(
                        "data.size",
                        format!(
                            "is {}; EBGAN's convolutional auto-encoder halves the image side \
                             with each layer: use an even size of 8 or more",
                            images.size
                        ),
                    )?;
                }
            }
        }
        DiscriminatorConfig::Mlp(m) => check_mlp("discriminator", m)?,
        DiscriminatorConfig::Linear(s) => finite("discriminator.init", s.init)?,
        DiscriminatorConfig::Dcgan(d) => check_dcgan("discriminator", d, &c.data)?,
    }
    let o = &c.objective;
    positive("objective.clip", o.clip)?;
    non_negative("objective.gp_weight", o.gp_weight)?;
    non_negative("objective.reg_weight", o.reg_weight)?;
    count("objective.pack", o.pack, 1, 1024)?;
    non_negative("objective.instance_noise", o.instance_noise)?;
    for (key, rows) in [
        ("train.batch", c.train.batch),
        ("probe.batch", c.probe.batch),
    ] {
        if rows % o.pack != 0 {
            fail(
                key,
                format!(
                    "must be a multiple of objective.pack ({}) so the rows form whole packs, got {rows}",
                    o.pack
                ),
            )?;
        }
    }
    let t = &c.train;
    count("train.batch", t.batch, 1, 1 << 20)?;
    count("train.n_critic", t.n_critic, 1, 1000)?;
    positive("train.diverge_above", t.diverge_above)?;
    non_negative("train.consensus_weight", t.consensus_weight)?;
    non_negative("train.sga_weight", t.sga_weight)?;
    check_optimizer("train.opt_g", &t.opt_g)?;
    check_optimizer("train.opt_d", &t.opt_d)?;
    positive("train.rtol", t.rtol)?;
    positive("train.atol", t.atol)?;
    match t.update {
        UpdateScheme::Rk4 => check_flow(t, "`rk4`")?,
        UpdateScheme::Rk45 => check_flow(t, "`rk45`")?,
        _ => {}
    }
    if c.record.drift {
        if t.update == UpdateScheme::Rk45 {
            fail(
                "record.drift",
                "`rk45` is the flow itself; the drift is for the discrete schemes",
            )?;
        }
        check_flow(t, "`record.drift` (step k is time k lr)")?;
    }
    let r = &c.record;
    if r.every == 0 {
        fail("record.every", "must be an integer >= 1")?;
    }
    if r.modes_every == 0 {
        fail("record.modes_every", "must be an integer >= 1")?;
    }
    count("record.eval_samples", r.eval_samples, 1, 1 << 22)?;
    non_negative("record.checkpoint_minutes", r.checkpoint_minutes)?;
    count("probe.batch", c.probe.batch, 1, 1 << 20)?;
    count("probe.max_dense", c.probe.max_dense, 1, 100_000_000)?;
    if let Some(threads) = c.probe.eigen_threads {
        count("probe.eigen_threads", threads, 1, 1024)?;
    }
    if c.probe.device == crate::spec::ProbeDevice::Trial
        && c.probe.product == crate::spec::ProbeProduct::FiniteDifference
        && matches!(c.backend, BackendKind::Cuda | BackendKind::Wgpu)
    {
        fail(
            "probe.device",
            "finite-difference products need f64, and a GPU probes in f32: use \
             probe.device = \"cpu\" with probe.product = \"finite_difference\"",
        )?;
    }
    count("probe.top_k", c.probe.top_k, 1, 1000)?;
    positive("probe.tol", c.probe.tol)?;
    count("probe.max_krylov", c.probe.max_krylov, 2, 100_000)?;
    count("probe.max_restarts", c.probe.max_restarts, 0, 100_000)?;
    check_memory(c)
}

/// Refuses a trial whose estimated memory (see `memory`) exceeds 80% of this machine's.
fn check_memory(c: &TrialConfig) -> Check {
    let Some(machine) = super::memory::machine_memory() else {
        return Ok(());
    };
    use super::memory::gib;
    // A dense spectrum the game is too large for: said as such, with the way out.
    let n = super::memory::game_parameters(c);
    let dense = super::memory::dense_probe_bytes(n);
    if c.probe.every > 0 && n <= c.probe.max_dense as f64 && dense > 0.8 * machine {
        return fail(
            "probe.max_dense",
            format!(
                "asks for the dense Jacobian of this game's {n} parameters: about {} (the \
                 n x n matrix in f64, three times: J, its balanced copy and the eigensolver's \
                 work), more than this machine's {} allows; set probe.max_dense below {n} to \
                 probe it by Arnoldi (probe.top_k eigenvalues of J) and Lanczos (the player \
                 Hessians' extremes) on the exact product",
                gib(dense),
                gib(machine)
            ),
        );
    }
    let e = super::memory::estimate(c);
    if e.total() <= 0.8 * machine {
        return Ok(());
    }
    fail(
        e.largest_key(c),
        format!(
            "the trial needs about {} of memory (generator {}, discriminator {}, probes {}), \
             more than this machine's {} allows; make it smaller",
            gib(e.total()),
            gib(e.generator),
            gib(e.discriminator),
            gib(e.probes),
            gib(machine)
        ),
    )
}

fn check_data(d: &DataConfig) -> Check {
    match d {
        DataConfig::Dirac(x) => finite("data.at", x.at),
        DataConfig::Mixture1d(x) => {
            count("data.modes", x.modes, 1, 10_000)?;
            non_negative("data.spread", x.spread)?;
            positive("data.std", x.std)
        }
        DataConfig::Ring(x) => {
            count("data.modes", x.modes, 1, 10_000)?;
            positive("data.radius", x.radius)?;
            positive("data.std", x.std)
        }
        DataConfig::Grid(x) => {
            count("data.side", x.side, 1, 100)?;
            positive("data.spacing", x.spacing)?;
            positive("data.std", x.std)
        }
        DataConfig::SwissRoll(x) => {
            non_negative("data.noise", x.noise)?;
            positive("data.scale", x.scale)
        }
        DataConfig::Regression(x) => {
            positive("data.range", x.range)?;
            non_negative("data.noise", x.noise)
        }
        DataConfig::Csv(x) => {
            if x.path.is_empty() {
                fail("data.path", "must name a CSV file of numeric columns")
            } else {
                Ok(())
            }
        }
        DataConfig::Images(x) => {
            use crate::spec::ImageSource;
            count("data.size", x.size, 4, 512)?;
            if x.channels != 1 && x.channels != 3 {
                return fail(
                    "data.channels",
                    format!("is {}; allowed: 1 (grey) or 3 (colour)", x.channels),
                );
            }
            match x.source {
                ImageSource::Shapes => count("data.count", x.count, 10, 1 << 20),
                ImageSource::FashionMnist => Ok(()),
                ImageSource::Mnist | ImageSource::Idx | ImageSource::Folder
                    if x.path.is_empty() =>
                {
                    fail(
                        "data.path",
                        match x.source {
                            ImageSource::Mnist => "must name the folder holding MNIST's IDX files",
                            ImageSource::Idx => "must name an IDX images file",
                            _ => "must name a folder of PNG/JPEG images",
                        },
                    )
                }
                _ => Ok(()),
            }
        }
    }
}

/// The dimension of the data a configuration names, where it is known without reading a file.
fn data_dim(d: &DataConfig) -> Option<usize> {
    match d {
        DataConfig::Dirac(_) | DataConfig::Mixture1d(_) => Some(1),
        DataConfig::Ring(_)
        | DataConfig::Grid(_)
        | DataConfig::SwissRoll(_)
        | DataConfig::Regression(_) => Some(2),
        DataConfig::Csv(_) => None,
        DataConfig::Images(x) => Some(x.channels * x.size * x.size),
    }
}

/// The prior model's settings, and the latent coordinates it reads (checked against the data's
/// dimension again once a CSV file is read, in `prior::fit`).
fn check_prior_model(c: &TrialConfig) -> Check {
    let z = c.latent.dim;
    let x = data_dim(&c.data);
    let needs_latent = |key: &str, k: usize, why: &str| -> Check {
        if k > z {
            fail(
                key,
                format!("{why} needs latent.dim >= {k}, but latent.dim is {z}"),
            )
        } else {
            Ok(())
        }
    };
    match &c.prior_model {
        PriorModelConfig::None => {}
        PriorModelConfig::PcaGaussian(p) => {
            count("prior_model.components", p.components, 1, 4096)?;
            if let Some(x) = x {
                count("prior_model.components", p.components, 1, x)?;
            }
            count("prior_model.samples", p.samples, 2, 10_000_000)?;
            needs_latent(
                "prior_model.components",
                p.components,
                "a PCA-Gaussian of that many components",
            )?;
        }
        PriorModelConfig::Gmm(g) => {
            count("prior_model.components", g.components, 1, 1000)?;
            count("prior_model.samples", g.samples, 2, 10_000_000)?;
            positive("prior_model.tol", g.tol)?;
            count("prior_model.max_iter", g.max_iter, 1, 1_000_000)?;
            positive("prior_model.reg_covar", g.reg_covar)?;
            if g.samples < g.components {
                fail(
                    "prior_model.samples",
                    format!(
                        "must be at least prior_model.components ({}), got {}",
                        g.components, g.samples
                    ),
                )?;
            }
            if let Some(x) = x {
                let k = x + usize::from(g.components > 1);
                needs_latent(
                    "latent.dim",
                    k,
                    "a Gaussian mixture (dim(x) coordinates for the Gaussian, one to pick the component)",
                )?;
            }
        }
        PriorModelConfig::Autoencoder(a) => {
            count("prior_model.code_dim", a.code_dim, 1, 4096)?;
            count("prior_model.depth", a.depth, 0, 64)?;
            count("prior_model.width", a.width, 1, 1 << 16)?;
            if a.steps > 10_000_000 {
                fail(
                    "prior_model.steps",
                    format!("must be an integer in [0, 10000000], got {}", a.steps),
                )?;
            }
            count("prior_model.batch", a.batch, 1, 1 << 20)?;
            positive("prior_model.lr", a.lr)?;
            count("prior_model.samples", a.samples, 2, 10_000_000)?;
            needs_latent(
                "prior_model.code_dim",
                a.code_dim,
                "an auto-encoder of that code size",
            )?;
        }
    }
    finite("skip.alpha", c.skip.alpha)?;
    positive("skip.fine_tune_lr", c.skip.fine_tune_lr)?;
    // `skip.fine_tune` with `prior_model = none` has nothing to tune and is allowed, so that
    // one base can sweep `prior_model` over `none` and the fitted models.
    if c.skip.fine_tune
        && c.prior_model != PriorModelConfig::None
        && (matches!(c.train.update, UpdateScheme::Rk4 | UpdateScheme::Rk45) || c.record.drift)
        && c.skip.fine_tune_lr != c.train.opt_g.lr()
    {
        fail(
            "skip.fine_tune_lr",
            "the gradient flow (`rk4`, `rk45`, `record.drift`) takes one step size: it must equal train.opt_g.lr",
        )?;
    }
    if matches!(c.generator, GeneratorConfig::Dirac(_)) && c.prior_model != PriorModelConfig::None {
        fail(
            "prior_model.kind",
            "a prior model needs a generator that reads z (`mlp` or `dcgan`); the Dirac-GAN's generator ignores it",
        )?;
    }
    Ok(())
}

/// A DCGAN player needs image data whose side it can halve at least once (even, 8 or more).
fn check_dcgan(player: &str, d: &DcganConfig, data: &DataConfig) -> Check {
    count(&format!("{player}.width"), d.width, 1, 4096)?;
    let DataConfig::Images(images) = data else {
        return fail(
            &format!("{player}.kind"),
            "`dcgan` needs image data (`data.kind = \"images\"`); use `mlp` for points",
        );
    };
    if crate::nets::dcgan::base_side(images.size).1 == 0 {
        return fail(
            "data.size",
            format!(
                "is {}; a DCGAN halves the image side with each layer: use an even size of 8 or \
                 more (28, 32 and 64 are the usual ones)",
                images.size
            ),
        );
    }
    Ok(())
}

/// The flow integrators, and the drift's reading of step k as time k lr, take one step size
/// for both players and no optimiser of their own; `what` names who asks.
fn check_flow(t: &TrainConfig, what: &str) -> Check {
    let plain = |o: &OptimizerConfig| matches!(o, OptimizerConfig::Sgd(s) if s.momentum == 0.0);
    if !plain(&t.opt_g) {
        fail(
            "train.opt_g",
            format!("{what} follows the gradient flow with step `lr`: use `kind = \"sgd\"` without momentum"),
        )?;
    }
    if !plain(&t.opt_d) || t.opt_d.lr() != t.opt_g.lr() {
        fail(
            "train.opt_d",
            format!("{what} takes one step size: plain SGD with the generator's `lr`"),
        )?;
    }
    if t.n_critic != 1 {
        fail(
            "train.n_critic",
            format!("{what} moves both players together: it must be 1"),
        )?;
    }
    Ok(())
}

fn check_mlp(player: &str, m: &MlpConfig) -> Check {
    count(&format!("{player}.depth"), m.depth, 0, 64)?;
    count(&format!("{player}.width"), m.width, 1, 1 << 16)
}

fn check_optimizer(key: &str, o: &OptimizerConfig) -> Check {
    positive(&format!("{key}.lr"), o.lr())?;
    match o {
        OptimizerConfig::Sgd(s) => open_unit(&format!("{key}.momentum"), s.momentum, false),
        OptimizerConfig::Adam(a) => {
            open_unit(&format!("{key}.beta1"), a.beta1, false)?;
            open_unit(&format!("{key}.beta2"), a.beta2, true)?;
            positive(&format!("{key}.eps"), a.eps)
        }
        OptimizerConfig::Rmsprop(r) => {
            open_unit(&format!("{key}.alpha"), r.alpha, true)?;
            positive(&format!("{key}.eps"), r.eps)
        }
    }
}
