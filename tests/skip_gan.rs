//! The skip-GAN x = P(z) + alpha G(z) and its prior models: exact Jacobians against finite
//! differences, the plain GAN as its special case, and studies that fit each prior model.

mod common;

use std::fs;

use common::study::{run_study, study_files, text};
use ganlab::backend::{CpuF64, CPU};
use ganlab::probe::field::GameField;
use ganlab::spec::{
    Activation, AutoencoderConfig, DataConfig, DiscriminatorConfig, GeneratorConfig, GmmConfig,
    MlpConfig, PcaGaussianConfig, Precision, PriorModelConfig, RingData, TrialConfig,
};

fn skip_game(prior: PriorModelConfig, learn_alpha: bool, fine_tune: bool) -> TrialConfig {
    let mut c = TrialConfig::default();
    c.precision = Precision::F64;
    c.data = DataConfig::Ring(RingData::default());
    c.latent.dim = 3;
    let mlp = MlpConfig {
        depth: 1,
        width: 5,
        activation: Activation::Tanh,
    };
    c.generator = GeneratorConfig::Mlp(mlp.clone());
    c.discriminator = DiscriminatorConfig::Mlp(mlp);
    c.prior_model = prior;
    c.skip.alpha = 0.7;
    c.skip.learn_alpha = learn_alpha;
    c.skip.fine_tune = fine_tune;
    c
}

fn priors() -> Vec<PriorModelConfig> {
    vec![
        PriorModelConfig::PcaGaussian(PcaGaussianConfig {
            components: 2,
            samples: 500,
        }),
        PriorModelConfig::Gmm(GmmConfig {
            components: 3,
            samples: 500,
            ..Default::default()
        }),
        PriorModelConfig::Autoencoder(AutoencoderConfig {
            code_dim: 2,
            depth: 1,
            width: 4,
            steps: 20,
            samples: 200,
            ..Default::default()
        }),
    ]
}

#[test]
fn the_skip_gans_jacobian_equals_central_finite_differences() {
    for prior in priors() {
        for (learn_alpha, fine_tune) in [(true, false), (true, true), (false, true)] {
            let c = skip_game(prior.clone(), learn_alpha, fine_tune);
            let f = GameField::from_config(&c, 12).unwrap();
            let (g, _, n) = f.dims();
            // G (3-5-2: 32 parameters), alpha, P's parameters when fine-tuned.
            let p_count = match &prior {
                PriorModelConfig::PcaGaussian(_) => 2 + 4,
                PriorModelConfig::Gmm(_) => 3 * (2 + 4),
                PriorModelConfig::Autoencoder(_) => 2 + 4 + (2 * 4 + 4) + (4 * 2 + 2),
                PriorModelConfig::None => 0,
            };
            assert_eq!(
                g,
                32 + usize::from(learn_alpha) + if fine_tune { p_count } else { 0 },
                "{prior:?}"
            );
            // A point away from initialisation symmetries; alpha (index 32) near 0.7.
            let p: Vec<f64> = (0..n)
                .map(|i| ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 1.2)
                .collect();
            let exact = f.jacobian::<CpuF64>(&p, &CPU);
            let fd = f.jacobian_fd::<CpuF64>(&p, &CPU);
            let (rel, norm) = common::relative_error(&exact, &fd);
            assert!(norm > 1e-6, "{prior:?}: the Jacobian vanishes");
            assert!(
                rel < 1e-6,
                "{prior:?} alpha learned {learn_alpha}, P fine-tuned {fine_tune}: relative error {rel:e}"
            );
            // The alpha row and column are not zero: alpha takes part in the game.
            if learn_alpha {
                let col: f64 = (0..n).map(|i| exact[i * n + 32].abs()).sum();
                assert!(col > 1e-6, "{prior:?}: alpha's column is zero");
            }
        }
    }
}

const BASE: &str = r#"
[base]
steps = 40
seed = 3
data = { kind = "ring", modes = 4, radius = 1.0, std = 0.05 }
latent = { dim = 3 }
generator = { kind = "mlp", depth = 1, width = 8, activation = "tanh" }
discriminator = { kind = "mlp", depth = 1, width = 8, activation = "tanh" }
train = { batch = 16 }
record = { every = 1, modes_every = 20, eval_samples = 64, checkpoint_every = 20 }
probe = { every = 20, batch = 16 }
"#;

/// Runs `[study] plain` into `dir/a` and `[study] skip` into `dir/b` (the plain base with
/// `extra` after it: skip settings and a `prior_model` sweep whose first arm is `none`, trial
/// `none_trial`), checks that every table of the plain trial equals the `none` arm's, and
/// gives both studies' tables.
fn plain_and_skip(
    dir: &std::path::Path,
    base: &str,
    extra: &str,
    none_trial: &str,
    jobs: &str,
) -> (
    std::collections::BTreeMap<String, Vec<u8>>,
    std::collections::BTreeMap<String, Vec<u8>>,
) {
    let plain = dir.join("plain.toml");
    fs::write(&plain, format!("[study]\nname = \"plain\"\n{base}")).unwrap();
    let skip = dir.join("skip.toml");
    fs::write(&skip, format!("[study]\nname = \"skip\"\n{base}{extra}")).unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    let o = run_study(&plain, &a, &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run_study(&skip, &b, &["--jobs", jobs], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let (a, b) = (study_files(&a), study_files(&b));
    let mut compared = 0;
    for (name, bytes) in &a {
        let Some(rest) = name.strip_prefix("000/") else {
            continue;
        };
        let other = b
            .get(&format!("{none_trial}/{rest}"))
            .unwrap_or_else(|| panic!("{rest} missing in the skip study: {:?}", b.keys()));
        assert!(
            other == bytes,
            "{rest} differs between the plain GAN and P = none"
        );
        compared += 1;
    }
    assert!(
        compared >= 5,
        "only {compared} tables compared: {:?}",
        a.keys()
    );
    (a, b)
}

#[test]
fn a_skip_gan_without_a_prior_model_is_the_plain_gan() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = plain_and_skip(
        tmp.path(),
        BASE,
        "\n[sweep]\nprior_model = [{ kind = \"none\" }, { kind = \"pca_gaussian\", components = 2 }]\n\"skip.alpha\" = [1.0]\n",
        "000-none-1.0",
        "1",
    );
    // With a prior model the samples change (P(z) is added).
    assert_ne!(
        a["000/metrics.csv"],
        b["001-pca_gaussian-2-1.0/metrics.csv"]
    );
}

#[test]
fn every_prior_model_is_fitted_saved_and_trained_through() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("priors.toml");
    fs::write(
        &file,
        format!(
            "[study]\nname = \"priors\"\n{BASE}\nskip = {{ alpha = 0.5, learn_alpha = true, fine_tune = true, fine_tune_lr = 1e-5 }}\n\
             [sweep]\nprior_model = [{{ kind = \"pca_gaussian\", components = 2, samples = 2000 }}, \
             {{ kind = \"gmm\", components = 4, samples = 2000 }}, \
             {{ kind = \"autoencoder\", code_dim = 2, depth = 1, width = 16, steps = 300, samples = 2000 }}]\n"
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = run_study(&file, &out, &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let trials = fs::read_to_string(out.join("trials.csv")).unwrap();
    let header = trials.lines().next().unwrap();
    for col in [
        "prior_explained_variance",
        "prior_log_likelihood",
        "prior_reconstruction_mse",
    ] {
        assert!(header.contains(col), "{col} missing: {header}");
    }
    assert_eq!(trials.matches(",done,").count(), 3, "{trials}");
    for (trial, kind) in [
        ("000-pca_gaussian-2-2000", "pca_gaussian"),
        ("001-gmm-4-2000", "gmm"),
        ("002-autoencoder-2-1-16-300-2", "autoencoder"),
    ] {
        let saved = fs::read_to_string(out.join(trial).join("prior_model.toml")).unwrap();
        let t: toml::Table = toml::from_str(&saved).unwrap();
        assert_eq!(t["fit"]["kind"].as_str(), Some(kind));
        let metrics = fs::read_to_string(out.join(trial).join("metrics.csv")).unwrap();
        let head = metrics.lines().next().unwrap();
        assert!(head.contains("grad_norm_g/skip.alpha"), "{head}");
        assert!(head.contains("grad_norm_g/prior."), "{head}");
    }
    // The 4-mode ring is fitted by a 4-component mixture with one component per mode, so the
    // mean log-likelihood is the ring's own: ln(1/4) - ln(2 pi std^2) - 1, std 0.05.
    let gmm: toml::Table =
        toml::from_str(&fs::read_to_string(out.join("001-gmm-4-2000/prior_model.toml")).unwrap())
            .unwrap();
    let ll = gmm["fit"]["quality"]["log_likelihood"].as_float().unwrap();
    let want = (0.25f64).ln() - (2.0 * std::f64::consts::PI * 0.05 * 0.05).ln() - 1.0;
    assert!((ll - want).abs() < 0.05, "{ll} vs {want}");
    let trace: Vec<f64> = gmm["fit"]["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_float().unwrap())
        .collect();
    assert!(trace.windows(2).all(|w| w[1] >= w[0] - 1e-12), "{trace:?}");
}

#[test]
fn a_killed_skip_gan_resumes_to_the_same_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("resume.toml");
    fs::write(
        &file,
        format!(
            "[study]\nname = \"resume\"\n{BASE}\nskip = {{ learn_alpha = true, fine_tune = true }}\nprior_model = {{ kind = \"gmm\", components = 4, samples = 1000 }}\n"
        ),
    )
    .unwrap();
    let want = tmp.path().join("want");
    let o = run_study(&file, &want, &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let got = tmp.path().join("got");
    let o = run_study(&file, &got, &[], &[("GANLAB_FAULT", "step:27")]);
    assert!(!o.status.success());
    let o = run_study(&file, &got, &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resumed: "), "{}", text(&o));
    assert_eq!(study_files(&want), study_files(&got));
}

#[test]
fn a_prior_model_that_cannot_be_fitted_fails_its_trial_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("one.csv"), "a,b\n1.0,2.0\n").unwrap();
    let file = tmp.path().join("bad_fit.toml");
    fs::write(
        &file,
        "[study]\nname = \"bad_fit\"\n[base]\nsteps = 5\ndata = { kind = \"csv\", path = \"one.csv\" }\n\
         generator = { kind = \"mlp\", depth = 1, width = 4 }\n\
         discriminator = { kind = \"mlp\", depth = 1, width = 4 }\ntrain = { batch = 4 }\n\
         [sweep]\nprior_model = [{ kind = \"autoencoder\", steps = 3 }, { kind = \"none\" }]\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = run_study(&file, &out, &[], &[]);
    // The study goes on: the plain GAN trial is done, the skip-GAN's is failed with why.
    let trials = fs::read_to_string(out.join("trials.csv")).unwrap();
    assert!(
        trials.contains(",failed,") && trials.contains(",done,"),
        "{}\n{trials}",
        text(&o)
    );
    let status = fs::read_to_string(out.join("000-autoencoder-3/status.toml")).unwrap();
    assert!(status.contains("at least 2 data rows"), "{status}");
}

/// A DCGAN on generated 8 x 8 shapes; `{}` takes the skip-GAN's settings and the sweep.
const DCGAN_BASE: &str = r#"
[base]
steps = 8
seed = 1
data = { kind = "images", source = "shapes", size = 8, count = 100 }
latent = { dim = 4 }
generator = { kind = "dcgan", width = 2 }
discriminator = { kind = "dcgan", width = 2, norm = "layer" }
train = { batch = 8 }
record = { every = 1, modes_every = 4, eval_samples = 32, checkpoint_every = 4 }
probe = { every = 4, batch = 8 }
"#;

#[test]
fn a_skip_gan_around_a_dcgan_fits_its_prior_on_images_and_reduces_to_the_plain_dcgan() {
    // learn_alpha and fine_tune have nothing to act on without P: the `none` arm is the plain
    // DCGAN, table for table.
    let tmp = tempfile::tempdir().unwrap();
    let (a, b_files) = plain_and_skip(
        tmp.path(),
        DCGAN_BASE,
        "skip = { alpha = 0.5, learn_alpha = true, fine_tune = true, fine_tune_lr = 1e-4 }\n\
         [sweep]\nprior_model = [{ kind = \"none\" }, \
         { kind = \"pca_gaussian\", components = 3, samples = 500 }, \
         { kind = \"autoencoder\", code_dim = 3, depth = 1, width = 8, steps = 30, samples = 300 }]\n",
        "000-none",
        "2",
    );
    let trials = String::from_utf8_lossy(&b_files["trials.csv"]).into_owned();
    assert_eq!(trials.matches(",done,").count(), 3, "{trials}");
    for trial in ["001-pca_gaussian-3-500", "002-autoencoder-3-1-8-30-300"] {
        let dir = tmp.path().join("b").join(trial);
        let saved = fs::read_to_string(dir.join("prior_model.toml")).unwrap();
        let t: toml::Table = toml::from_str(&saved).unwrap();
        // P maps z to whole images: its last tensor (PCA's directions, the decoder's output
        // bias) has 8 x 8 columns.
        let params = t["params"].as_array().unwrap();
        let last = params.last().unwrap();
        assert_eq!(last["cols"].as_integer(), Some(64), "{trial}: {saved}");
        let metrics = fs::read_to_string(dir.join("metrics.csv")).unwrap();
        let head = metrics.lines().next().unwrap();
        assert!(head.contains("grad_norm_g/skip.alpha"), "{trial}: {head}");
        assert!(head.contains("grad_norm_g/prior."), "{trial}: {head}");
        // The learned alpha's value at every record: 0.5 at the start, then moving.
        let col = head.split(',').position(|c| c == "skip_alpha").unwrap();
        let alphas: Vec<f64> = metrics
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
            .collect();
        assert_eq!(alphas[0], 0.5, "{trial}");
        assert!(
            alphas.iter().any(|&a| a != 0.5),
            "{trial}: alpha never moved"
        );
        assert_ne!(
            b_files[&format!("{trial}/metrics.csv")],
            a["000/metrics.csv"]
        );
        assert!(dir.join("grids").is_dir(), "{trial}: no sample grids");
        let eigen = fs::read_to_string(dir.join("eigen.csv")).unwrap();
        assert!(eigen.lines().count() > 1, "{trial}: no probe rows");
    }
}
