//! Stability probes against closed forms and finite differences.

mod common;

use ganlab::backend::{CpuF64, CPU};
use ganlab::probe::field::GameField;
use ganlab::probe::spectrum::{dense_eigenvalues, simultaneous_gd_radius, Eigenvalue};
use ganlab::spec::{
    Activation, DataConfig, DiscriminatorConfig, GeneratorConfig, Loss, MlpConfig, Precision,
    Regulariser, RingData, TrialConfig,
};

fn dirac(loss: Loss, reg: Regulariser, gamma: f64) -> GameField {
    let mut c = common::dirac_game(loss, 0.0, 0.0, 0.2);
    c.objective.regulariser = reg;
    c.objective.reg_weight = gamma;
    GameField::from_config(&c, 8).unwrap()
}

fn spectrum_at_equilibrium(f: &GameField) -> Vec<Eigenvalue> {
    let jac = f.jacobian::<CpuF64>(&[0.0, 0.0], &CPU);
    dense_eigenvalues(&jac, 2)
}

fn assert_pair(e: &[Eigenvalue], re: f64, im: f64, what: &str) {
    assert_eq!(e.len(), 2, "{what}");
    for (got, sign) in e.iter().zip([-1.0, 1.0]) {
        assert!(
            (got.re - re).abs() < 1e-6 && (got.im - sign * im).abs() < 1e-6,
            "{what}: {e:?}, want {re} +- {im}i"
        );
    }
}

#[test]
fn dirac_gan_spectra_at_equilibrium_are_the_known_ones() {
    assert_pair(
        &spectrum_at_equilibrium(&dirac(Loss::Minimax, Regulariser::None, 0.0)),
        0.0,
        0.5,
        "minimax",
    );
    assert_pair(
        &spectrum_at_equilibrium(&dirac(Loss::NonSaturating, Regulariser::None, 0.0)),
        0.0,
        0.5,
        "non-saturating",
    );
    assert_pair(
        &spectrum_at_equilibrium(&dirac(Loss::WganClip, Regulariser::None, 0.0)),
        0.0,
        1.0,
        "wgan",
    );
    // R1: gamma/2 +- sqrt(gamma^2/4 - 1/4).
    let gamma: f64 = 0.3;
    let im = (0.25 - gamma * gamma / 4.0).sqrt();
    assert!((im - 0.47697).abs() < 1e-5);
    assert_pair(
        &spectrum_at_equilibrium(&dirac(Loss::NonSaturating, Regulariser::R1, gamma)),
        0.15,
        im,
        "R1 0.3",
    );
    // gamma = 1: the double eigenvalue 1/2 (a defective one: sqrt(machine eps) splitting).
    let e = spectrum_at_equilibrium(&dirac(Loss::NonSaturating, Regulariser::R1, 1.0));
    assert!(
        e.iter()
            .all(|e| (e.re - 0.5).abs() < 1e-6 && e.im.abs() < 1e-6),
        "{e:?}"
    );
}

#[test]
fn simultaneous_gd_on_the_bilinear_game_has_radius_sqrt_1_plus_eta2() {
    // The Dirac WGAN is the bilinear game f(theta, psi) = theta psi.
    let f = dirac(Loss::WganClip, Regulariser::None, 0.0);
    let jac = f.jacobian::<CpuF64>(&[0.0, 0.0], &CPU);
    for eta in [0.01, 0.2, 1.0] {
        let r = simultaneous_gd_radius(&jac, 2, 1, eta, eta);
        assert!(
            (r - (1.0f64 + eta * eta).sqrt()).abs() < 1e-12,
            "eta {eta}: {r}"
        );
    }
}

fn mlp_game(loss: Loss, reg: Regulariser) -> (GameField, Vec<f64>) {
    let mut c = TrialConfig::default();
    c.precision = Precision::F64;
    c.data = DataConfig::Ring(RingData::default());
    let mlp = MlpConfig {
        depth: 1,
        width: 6,
        activation: Activation::Tanh,
    };
    c.generator = GeneratorConfig::Mlp(mlp.clone());
    c.discriminator = DiscriminatorConfig::Mlp(MlpConfig {
        activation: Activation::LeakyRelu,
        ..mlp
    });
    c.objective.loss = loss;
    c.objective.regulariser = reg;
    c.objective.reg_weight = 1.0;
    c.objective.gp_weight = 1.0;
    let f = GameField::from_config(&c, 16).unwrap();
    // A point away from initialisation symmetries.
    let (_, _, n) = f.dims();
    let p: Vec<f64> = (0..n)
        .map(|i| ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 1.2)
        .collect();
    (f, p)
}

#[test]
fn exact_jacobian_products_equal_central_finite_differences() {
    for (loss, reg) in [
        (Loss::NonSaturating, Regulariser::None),
        (Loss::Minimax, Regulariser::R1),
        (Loss::WganGp, Regulariser::None),
        (Loss::Hinge, Regulariser::R2),
    ] {
        let (f, p) = mlp_game(loss, reg);
        let (_, _, n) = f.dims();
        let exact = f.jacobian::<CpuF64>(&p, &CPU);
        // The library's finite-difference Jacobian (columns J e_j) ...
        let fd = f.jacobian_fd::<CpuF64>(&p, &CPU);
        let (rel, norm) = common::relative_error(&exact, &fd);
        // ... and its product in a direction that mixes every parameter: J w = (J^T)^T w.
        let w: Vec<f64> = (0..n).map(|i| ((i * 31 % 17) as f64 - 8.0) / 8.0).collect();
        let jw = f.jvp_fd::<CpuF64>(&p, &w, &CPU);
        let want: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| exact[i * n + j] * w[j]).sum())
            .collect();
        let err = jw
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt()
            / want.iter().map(|b| b * b).sum::<f64>().sqrt();
        assert!(err < 1e-6, "{loss:?} {reg:?}: J w relative error {err:e}");
        assert!(
            norm > 1e-6,
            "{loss:?}: Jacobian vanishes, the test would be void"
        );
        assert!(
            rel < 1e-6,
            "{loss:?} {reg:?}: relative error {rel:e} over {n} parameters"
        );
    }
}

#[test]
fn trace_of_the_game_jacobian_is_the_sum_of_its_eigenvalues() {
    let (f, p) = mlp_game(Loss::NonSaturating, Regulariser::None);
    let (_, _, n) = f.dims();
    let jac = f.jacobian::<CpuF64>(&p, &CPU);
    let trace: f64 = (0..n).map(|i| jac[i * n + i]).sum();
    let e = dense_eigenvalues(&jac, n);
    let (re, im): (f64, f64) = (e.iter().map(|e| e.re).sum(), e.iter().map(|e| e.im).sum());
    assert!(
        (re - trace).abs() < 1e-9 * (1.0 + trace.abs()),
        "{re} vs {trace}"
    );
    assert!(im.abs() < 1e-9);
}

/// Distance to the equilibrium after `steps` plain gradient steps of 0.2 from (1, 1).
fn dirac_distance(update: ganlab::spec::UpdateScheme, gamma: f64, steps: usize) -> f64 {
    let mut c = common::dirac_game(Loss::Minimax, 1.0, 1.0, 0.2);
    c.objective.regulariser = Regulariser::R1;
    c.objective.reg_weight = gamma;
    c.train.update = update;
    let mut t = ganlab::train::Trainer::<CpuF64>::new(&c, CPU).unwrap();
    for _ in 0..steps {
        t.step();
    }
    let (g, d) = t.parameter_values();
    g[0][0].hypot(d[0][0])
}

#[test]
fn dirac_trajectories_spiral_out_stay_or_converge() {
    use ganlab::spec::UpdateScheme::{Alternating, Simultaneous};
    let start = 2f64.sqrt();
    let sim = dirac_distance(Simultaneous, 0.0, 400);
    let alt = dirac_distance(Alternating, 0.0, 400);
    let r1 = dirac_distance(Simultaneous, 0.3, 400);
    assert!(
        sim > 1.5 * start,
        "simultaneous GD should spiral out: {sim}"
    );
    assert!(
        (alt / start - 1.0).abs() < 0.1,
        "alternating GD should stay on its orbit: {alt}"
    );
    assert!(r1 < 1e-3, "R1 should converge: {r1}");
}

fn medium_game() -> (GameField, Vec<f64>) {
    let mut c = TrialConfig::default();
    c.precision = Precision::F64;
    let mlp = MlpConfig {
        depth: 2,
        width: 8,
        activation: Activation::Tanh,
    };
    c.generator = GeneratorConfig::Mlp(mlp.clone());
    c.discriminator = DiscriminatorConfig::Mlp(mlp);
    let f = GameField::from_config(&c, 32).unwrap();
    let t = ganlab::train::Trainer::<CpuF64>::new(&c, CPU).unwrap();
    let (g, d) = t.parameter_values();
    (f, g.into_iter().chain(d).flatten().collect())
}

#[test]
fn arnoldi_top_k_agrees_with_the_dense_spectrum() {
    use ganlab::probe::krylov::{arnoldi, Which};
    let (f, p) = medium_game();
    let (_, _, n) = f.dims();
    assert!(n > 150, "{n}");
    let dense = dense_eigenvalues(&f.jacobian::<CpuF64>(&p, &CPU), n);
    for which in [
        Which::LargestMagnitude,
        Which::LargestReal,
        Which::SmallestReal,
    ] {
        let mut rng = ganlab::rng::stream(1, ganlab::rng::Stream::Probe);
        // The operator is J^T: the same eigenvalues as J.
        let mut op = |w: &[f64]| f.vjp::<CpuF64>(&p, w, &CPU);
        let r = arnoldi(&mut op, n, 4, which, 1e-8, n, 0, &mut rng);
        assert_eq!(r.converged, 4, "{which:?}: {:?}", r.residuals);
        let mut want = dense.clone();
        let key = |e: &Eigenvalue| match which {
            Which::LargestMagnitude => e.re.hypot(e.im),
            Which::LargestReal => e.re,
            Which::SmallestReal => -e.re,
            Which::LargestImag => e.im.abs(),
        };
        want.sort_by(|a, b| key(b).total_cmp(&key(a)));
        for (got, w) in r.values.iter().zip(&want) {
            assert!(
                (key(got) - key(w)).abs() < 1e-6 * key(w).abs().max(1.0),
                "{which:?}: {got:?} vs {w:?}"
            );
            // The value itself exists in the dense spectrum.
            let close = dense
                .iter()
                .any(|d| (d.re - got.re).abs() < 1e-6 && (d.im - got.im).abs() < 1e-6);
            assert!(close, "{which:?}: {got:?} is not in the dense spectrum");
        }
        assert!(r.products <= n, "{which:?}: {} products", r.products);
    }
}

#[test]
fn restarted_arnoldi_agrees_with_the_dense_spectrum() {
    use ganlab::probe::krylov::{arnoldi, Which};
    let (f, p) = medium_game();
    let (_, _, n) = f.dims();
    let dense = dense_eigenvalues(&f.jacobian::<CpuF64>(&p, &CPU), n);
    let mut rng = ganlab::rng::stream(2, ganlab::rng::Stream::Probe);
    let mut op = |w: &[f64]| f.vjp::<CpuF64>(&p, w, &CPU);
    // A basis of 20 for 5 values: the answer needs restarts.
    let r = arnoldi(
        &mut op,
        n,
        5,
        Which::LargestMagnitude,
        1e-8,
        20,
        200,
        &mut rng,
    );
    assert_eq!(r.converged, 5, "{:?}", r.residuals);
    assert!(r.products > 20);
    let mut mags: Vec<f64> = dense.iter().map(|e| e.re.hypot(e.im)).collect();
    mags.sort_by(|a, b| b.total_cmp(a));
    for (got, want) in r.values.iter().zip(&mags) {
        let m = got.re.hypot(got.im);
        assert!(
            (m - want).abs() < 1e-6 * want.max(1.0),
            "{got:?}: |.| {m} vs {want}"
        );
        assert!(dense
            .iter()
            .any(|d| (d.re - got.re).abs() < 1e-6 && (d.im - got.im).abs() < 1e-6));
    }
}

#[test]
fn lanczos_extremes_equal_the_dense_hessian_eigenvalues() {
    use ganlab::probe::krylov::lanczos;
    let (f, p) = medium_game();
    let (ng, nd, n) = f.dims();
    let report = ganlab::probe::probe_dense(&f, &p, 1e-3, 1e-3);
    // H_DD w is the phi block of J^T (0, w).
    let mut op = |w: &[f64]| {
        let mut full = vec![0.0; n];
        full[ng..].copy_from_slice(w);
        f.vjp::<CpuF64>(&p, &full, &CPU)[ng..].to_vec()
    };
    let mut rng = ganlab::rng::stream(2, ganlab::rng::Stream::Probe);
    let r = lanczos(&mut op, nd, 3, 1e-9, nd, &mut rng);
    assert_eq!(r.converged, r.values.len(), "{:?}", r.residuals);
    let dense = &report.hessian_d;
    let got: Vec<f64> = r.values.iter().map(|e| e.re).collect();
    for i in 0..3 {
        assert!(
            (got[i] - dense[i]).abs() < 1e-8 * dense[i].abs().max(1.0),
            "low {i}: {got:?} vs {:?}",
            &dense[..3]
        );
        let (g, d) = (got[got.len() - 1 - i], dense[dense.len() - 1 - i]);
        assert!(
            (g - d).abs() < 1e-8 * d.abs().max(1.0),
            "high {i}: {g} vs {d}"
        );
    }
}

#[test]
fn games_above_max_dense_are_probed_by_arnoldi_and_lanczos() {
    use ganlab::probe::{probe_dense, probe_point};
    use ganlab::spec::ProbeConfig;
    let (f, p) = medium_game();
    let cfg = ProbeConfig {
        max_dense: 10,
        top_k: 3,
        ..Default::default()
    };
    let k = probe_point(&f, &p, &cfg, 0, &Default::default(), 1e-3, 1e-3);
    let d = probe_dense(&f, &p, 1e-3, 1e-3);
    assert_eq!((k.game_method, k.hessian_method), ("arnoldi", "lanczos"));
    assert_eq!(k.converged, 3);
    assert_eq!(k.game_residuals.len(), 3);
    // The largest magnitude found is the dense one.
    let top = |v: &[Eigenvalue]| v.iter().map(|e| e.re.hypot(e.im)).fold(0.0, f64::max);
    assert!((top(&k.game) - top(&d.game)).abs() < 1e-6);
    let (lo, hi) = (k.hessian_d[0], *k.hessian_d.last().unwrap());
    assert!((lo - d.hessian_d[0]).abs() < 1e-7 && (hi - d.hessian_d.last().unwrap()).abs() < 1e-7);
    assert!(k.gd_radius.is_nan());
}

#[test]
fn path_angle_is_zero_for_a_rotation_and_follows_the_closed_form_with_r1() {
    use ganlab::probe::path::{alphas, path_angle};
    // Dirac WGAN: v = (-psi, theta), from (1, 1) to (0, 0): v is orthogonal to the path.
    let f = dirac(Loss::WganClip, Regulariser::None, 0.0);
    let a = alphas(13);
    assert!((a[0] + 0.1).abs() < 1e-15 && (a[12] - 1.1).abs() < 1e-15);
    for p in path_angle(&f, &[1.0, 1.0], &[0.0, 0.0], &a) {
        if (p.alpha - 1.0).abs() > 1e-9 {
            assert!(p.cosine.abs() < 1e-12, "{p:?}");
            assert!(
                (p.norm - (1.0 - p.alpha).abs() * 2f64.sqrt()).abs() < 1e-12,
                "{p:?}"
            );
        }
    }
    // With R1 (gamma): v = (-psi, theta + gamma psi); on the path s(1, 1), s = 1 - alpha:
    // v = s(-1, 1 + gamma), direction (-1, -1): cos = -gamma sign(s) / (sqrt 2 |(-1, 1 + gamma)|).
    let gamma = 0.5;
    let f = dirac(Loss::WganClip, Regulariser::R1, gamma);
    for p in path_angle(&f, &[1.0, 1.0], &[0.0, 0.0], &a) {
        let s: f64 = 1.0 - p.alpha;
        if s.abs() > 1e-9 {
            let want =
                -gamma * s.signum() / (2f64.sqrt() * (1.0 + (1.0 + gamma) * (1.0 + gamma)).sqrt());
            assert!((p.cosine - want).abs() < 1e-12, "{p:?} want {want}");
            assert!(
                (p.norm_g - s.abs()).abs() < 1e-12
                    && (p.norm_d - s.abs() * (1.0 + gamma)).abs() < 1e-12
            );
        }
    }
}

#[test]
fn the_jacobian_does_not_depend_on_the_number_of_threads() {
    let (f, p) = mlp_game(Loss::NonSaturating, Regulariser::R1);
    let in_pool = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| f.jacobian::<CpuF64>(&p, &CPU))
    };
    let one = in_pool(1);
    let two = in_pool(2);
    assert!(one.iter().any(|x| *x != 0.0));
    assert_eq!(one, two, "rows differ between 1 and 2 threads");
}

#[test]
fn the_jacobian_does_not_depend_on_how_many_rows_share_a_graph() {
    // Rows of J come from graphs that stack copies of the parameters, only the generator's or
    // only the discriminator's part of v per graph; copies must not mix.
    let (f, p) = mlp_game(Loss::WganGp, Regulariser::None);
    let (_, _, n) = f.dims();
    let single = f.jacobian_blocked::<CpuF64>(&p, 1, &CPU);
    for block in [5, n] {
        let blocked = f.jacobian_blocked::<CpuF64>(&p, block, &CPU);
        assert_eq!(
            single, blocked,
            "blocks of {block} rows differ from single rows"
        );
    }
    // A product with w on both players at once is J^T w, and three products in one graph
    // are the three separate ones.
    let ws: Vec<f64> = (0..3 * n)
        .map(|i| ((i * 37 % 23) as f64 - 11.0) / 11.0)
        .collect();
    let together = f.vjps::<CpuF64>(&p, &ws, &CPU);
    for (c, w) in ws.chunks(n).enumerate() {
        let alone = f.vjp::<CpuF64>(&p, w, &CPU);
        assert_eq!(alone, together[c * n..(c + 1) * n], "copy {c} differs");
        for (j, got) in alone.iter().enumerate() {
            let want: f64 = (0..n).map(|i| single[i * n + j] * w[i]).sum();
            assert!(
                (got - want).abs() < 1e-12 * (1.0 + want.abs()),
                "(J^T w)_{j}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn a_packed_games_jacobian_equals_central_finite_differences() {
    // PacGAN with packs of 2 (D reads 4 inputs), under WGAN-GP (one interpolation weight per
    // pack) and under R1.
    for (loss, reg) in [
        (Loss::WganGp, Regulariser::None),
        (Loss::NonSaturating, Regulariser::R1),
    ] {
        let (f, _) = mlp_game(loss, reg);
        let mut c = TrialConfig::default();
        c.precision = Precision::F64;
        c.data = DataConfig::Ring(RingData::default());
        c.generator = GeneratorConfig::Mlp(MlpConfig {
            depth: 1,
            width: 6,
            activation: Activation::Tanh,
        });
        c.discriminator = DiscriminatorConfig::Mlp(MlpConfig {
            depth: 1,
            width: 6,
            activation: Activation::LeakyRelu,
        });
        c.objective.loss = loss;
        c.objective.regulariser = reg;
        c.objective.reg_weight = 1.0;
        c.objective.gp_weight = 1.0;
        c.objective.pack = 2;
        let packed = GameField::from_config(&c, 16).unwrap();
        // D's first layer reads 2 x 2 inputs: 4 x 6 weights instead of 2 x 6.
        assert_eq!(packed.dims().1, f.dims().1 + 2 * 6);
        assert_eq!(
            packed.eps.as_ref().map(Vec::len),
            (loss == Loss::WganGp).then_some(8)
        );
        let n = packed.dims().2;
        let p: Vec<f64> = (0..n)
            .map(|i| ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 1.2)
            .collect();
        let exact = packed.jacobian::<CpuF64>(&p, &CPU);
        let fd = packed.jacobian_fd::<CpuF64>(&p, &CPU);
        let (rel, norm) = common::relative_error(&exact, &fd);
        assert!(norm > 1e-6);
        assert!(rel < 1e-6, "{loss:?}: relative error {rel:e}");
    }
}

/// The Dirac-GAN with instance noise of std sigma (data at 0, G = theta, D(x) = psi x): at the
/// equilibrium (0, 0), with f'(0) = 1/2 and softplus''(0) = 1/4, on a batch whose real noise
/// has mean square m1 and whose fake noise m2,
///   J = [[0, -1/2], [1/2, (m1 + m2)/4]],
/// and in expectation (m1 = m2 = sigma^2) the eigenvalues are
///   sigma^2/4 +- sqrt(sigma^4/16 - 1/4)
/// (Mescheder et al. 2018: instance noise acts at the equilibrium like R1 with
/// gamma = sigma^2/2).
#[test]
fn instance_noise_on_the_dirac_gan_gives_its_closed_form_jacobian() {
    for sigma in [0.5f64, 1.0, 1.6] {
        for loss in [Loss::Minimax, Loss::NonSaturating] {
            let mut c = common::dirac_game(loss, 0.0, 0.0, 0.1);
            c.objective.instance_noise = sigma;
            let f = GameField::from_config(&c, 4096).unwrap();
            let real_ms = f.real.iter().map(|x| x * x).sum::<f64>() / f.real.len() as f64;
            // Latent rows carry (z, fake noise): the Dirac generator reads one latent column.
            let fake: Vec<f64> = f.z.chunks(f.z_dim).map(|r| r[f.z_dim - 1]).collect();
            let fake_ms = fake.iter().map(|x| x * x).sum::<f64>() / fake.len() as f64;
            let j = f.jacobian::<CpuF64>(&[0.0, 0.0], &CPU);
            let a = (real_ms + fake_ms) / 4.0;
            let want = [0.0, -0.5, 0.5, a];
            for (got, w) in j.iter().zip(want) {
                assert!(
                    (got - w).abs() < 1e-12,
                    "{loss:?} sigma {sigma}: J = {j:?}, want {want:?}"
                );
            }
            // Against the expectation: within the sampling error of 4096 rows.
            let e = dense_eigenvalues(&j, 2);
            let re = sigma * sigma / 4.0;
            let disc = sigma.powi(4) / 16.0 - 0.25;
            for (got, sign) in e.iter().zip([-1.0, 1.0]) {
                let (want_re, want_im) = if disc < 0.0 {
                    (re, sign * (-disc).sqrt())
                } else {
                    (re + sign * disc.sqrt(), 0.0)
                };
                assert!(
                    (got.re - want_re).abs() < 0.06 * sigma * sigma
                        && (got.im - want_im).abs() < 0.06,
                    "sigma {sigma}: {e:?}, want {want_re} + {want_im}i"
                );
            }
        }
    }
}

#[test]
fn a_spectrally_normalised_games_jacobian_equals_central_finite_differences() {
    use ganlab::game::spectral::{weights, SpectralVectors};
    for (loss, reg) in [
        (Loss::NonSaturating, Regulariser::None),
        (Loss::WganGp, Regulariser::None),
    ] {
        let (f, p) = mlp_game(loss, reg);
        // Any fixed unit vectors define the normaliser (training uses the power iteration's).
        let specs = f.game.discriminator.param_specs();
        let unit = |n: usize, k: usize| -> Vec<f64> {
            let x: Vec<f64> = (0..n)
                .map(|i| ((i * 13 + k * 5) % 7) as f64 - 2.5)
                .collect();
            let norm = x.iter().map(|a| a * a).sum::<f64>().sqrt();
            x.iter().map(|a| a / norm).collect()
        };
        let outer = weights(&f.game.discriminator)
            .into_iter()
            .map(|i| {
                let (v, u) = (unit(specs[i].rows, i), unit(specs[i].cols, i + 1));
                (
                    i,
                    v.iter()
                        .flat_map(|a| u.iter().map(move |b| a * b))
                        .collect(),
                )
            })
            .collect();
        let plain = f.jacobian::<CpuF64>(&p, &CPU);
        let f = f.with_spectral(Some(SpectralVectors { outer }));
        let (_, _, n) = f.dims();
        let exact = f.jacobian::<CpuF64>(&p, &CPU);
        let fd = f.jacobian_fd::<CpuF64>(&p, &CPU);
        let (rel, norm) = common::relative_error(&exact, &fd);
        assert!(
            norm > 1e-6 && rel < 1e-6,
            "{loss:?}: relative error {rel:e} over {n}"
        );
        // The normalisation changes the game.
        let (moved, _) = common::relative_error(&plain, &exact);
        assert!(moved > 1e-2, "{loss:?}: {moved:e}");
    }
}

/// The eigenvalues of I - eta J of a 2 x 2 game, as a probe passes them to
/// `operator::measure`.
fn plain(jac: &[f64], eta: f64, game: &[Eigenvalue]) -> Vec<Eigenvalue> {
    ganlab::probe::spectrum::gd_step_eigenvalues(jac, 2, &[eta, eta], Some(game))
}

#[test]
fn consensus_and_sga_field_matrices_on_the_dirac_gan_have_the_known_spectra() {
    use ganlab::probe::operator::measure;
    use ganlab::spec::{TrainConfig, UpdateScheme};
    // At the equilibrium J = [[0, 1/2], [-1/2, 0]] (eigenvalues +-0.5i) for both losses, so
    // J^T J = I/4: consensus with gamma = 1 has J + J^T J with eigenvalues 0.25 +- 0.5i, and SGA
    // (A = J, A^T J = J^T J) with lambda has lambda/4 +- 0.5i.
    for loss in [Loss::Minimax, Loss::NonSaturating] {
        let f = dirac(loss, Regulariser::None, 0.0);
        let jac = f.jacobian::<CpuF64>(&[0.0, 0.0], &CPU);
        let game = dense_eigenvalues(&jac, 2);
        let mut t = TrainConfig {
            update: UpdateScheme::Consensus,
            consensus_weight: 1.0,
            ..Default::default()
        };
        let o = measure(&jac, 2, 1, &[0.2, 0.2], &plain(&jac, 0.2, &game), &t);
        assert_pair(&o.field, 0.25, 0.5, &format!("{loss:?} consensus"));
        // Its step map is I - h (J + J^T J): eigenvalues 1 - 0.2 (0.25 +- 0.5i).
        assert!(
            (o.step_radius - (0.95f64).hypot(0.1)).abs() < 1e-9,
            "{}",
            o.step_radius
        );
        t.update = UpdateScheme::Sga;
        t.sga_weight = 2.0;
        let o = measure(&jac, 2, 1, &[0.2, 0.2], &plain(&jac, 0.2, &game), &t);
        assert_pair(&o.field, 0.5, 0.5, &format!("{loss:?} sga"));
        // Simultaneous steps follow J itself: no field matrix of their own.
        t.update = UpdateScheme::Simultaneous;
        let o = measure(&jac, 2, 1, &[0.2, 0.2], &plain(&jac, 0.2, &game), &t);
        assert!(o.field.is_empty());
        assert!((o.step_radius - (1.0f64).hypot(0.1)).abs() < 1e-12);
    }
}

#[test]
fn step_maps_on_the_bilinear_game_have_their_closed_form_radii() {
    use ganlab::probe::operator::measure;
    use ganlab::spec::{TrainConfig, UpdateScheme};
    // The WGAN Dirac-GAN: J = [[0, -1], [1, 0]], eigenvalues +-i, for any point.
    let mut c = common::dirac_game(Loss::WganClip, 0.0, 0.0, 0.1);
    c.objective.clip = 100.0;
    let f = GameField::from_config(&c, 8).unwrap();
    let jac = f.jacobian::<CpuF64>(&[0.3, -0.2], &CPU);
    let game = dense_eigenvalues(&jac, 2);
    for eta in [0.05, 0.2, 0.5] {
        let radius = |update| {
            let t = TrainConfig {
                update,
                ..Default::default()
            };
            measure(&jac, 2, 1, &[eta, eta], &plain(&jac, eta, &game), &t).step_radius
        };
        let close = |a: f64, b: f64, what: &str| {
            assert!((a - b).abs() < 1e-10, "eta {eta} {what}: {a} vs {b}")
        };
        close(
            radius(UpdateScheme::Simultaneous),
            (1.0 + eta * eta).sqrt(),
            "simultaneous",
        );
        close(
            radius(UpdateScheme::Extragradient),
            (1.0 - eta * eta + eta.powi(4)).sqrt(),
            "extragradient",
        );
        // Alternating steps are area-preserving here: det M = 1 with complex eigenvalues.
        close(radius(UpdateScheme::Alternating), 1.0, "alternating");
        close(
            radius(UpdateScheme::AlternatingGFirst),
            1.0,
            "alternating_g_first",
        );
        // RK4: |R(-i eta)|, R the Taylor polynomial of exp to degree 4.
        let rk4 = nalgebra::Complex::new(
            1.0 - eta.powi(2) / 2.0 + eta.powi(4) / 24.0,
            -eta + eta.powi(3) / 6.0,
        );
        close(radius(UpdateScheme::Rk4), rk4.norm(), "rk4");
        // Optimistic: the roots of mu^2 - (1 - 2 eta l) mu - eta l = 0 for l = +-i.
        let l = nalgebra::Complex::new(0.0, 1.0) * eta;
        let b = -(nalgebra::Complex::new(1.0, 0.0) - l * 2.0);
        let disc = (b * b + l * 4.0).sqrt();
        let roots = [(-b + disc) / 2.0, (-b - disc) / 2.0];
        let want = roots.iter().map(|r| r.norm()).fold(0.0, f64::max);
        // At eta = 0.5 the two roots coincide (a Jordan block): the computed eigenvalues are
        // then only good to sqrt(epsilon).
        let got = radius(UpdateScheme::Optimistic);
        assert!(
            (got - want).abs() < 1e-7,
            "eta {eta} optimistic: {got} vs {want}"
        );
        assert!(want < 1.0, "optimism converges here");
    }
}

#[test]
fn the_step_map_is_one_training_step_on_a_linear_game() {
    use ganlab::probe::operator::step_map;
    use ganlab::spec::{OptimizerConfig, SgdConfig, UpdateScheme};
    // On the bilinear game (a linear field) one step of each scheme is exactly M p, also with
    // two step sizes and several discriminator updates per step.
    let (theta, psi) = (0.7, -0.4);
    for (update, lr_d, n_critic) in [
        (UpdateScheme::Simultaneous, 0.3, 1),
        (UpdateScheme::Simultaneous, 0.3, 3),
        (UpdateScheme::Alternating, 0.3, 2),
        (UpdateScheme::AlternatingGFirst, 0.3, 2),
        (UpdateScheme::Extragradient, 0.3, 2),
        (UpdateScheme::Consensus, 0.3, 2),
        (UpdateScheme::Sga, 0.3, 1),
        (UpdateScheme::Rk4, 0.1, 1),
    ] {
        let mut c = common::dirac_game(Loss::WganClip, theta, psi, 0.1);
        c.objective.clip = 100.0;
        c.train.update = update;
        c.train.n_critic = n_critic;
        c.train.consensus_weight = 0.7;
        c.train.sga_weight = 0.6;
        c.train.opt_d = OptimizerConfig::Sgd(SgdConfig {
            lr: lr_d,
            momentum: 0.0,
        });
        let mut t = ganlab::train::Trainer::<CpuF64>::new(&c, CPU).unwrap();
        t.step();
        let (g, d) = t.parameter_values();
        let f = GameField::from_config(&c, 8).unwrap();
        let jac = f.jacobian::<CpuF64>(&[theta, psi], &CPU);
        let m = step_map(&jac, 2, 1, &[0.1, lr_d], &c.train).unwrap();
        let want = (
            m[(0, 0)] * theta + m[(0, 1)] * psi,
            m[(1, 0)] * theta + m[(1, 1)] * psi,
        );
        assert!(
            (g[0][0] - want.0).abs() < 1e-12 && (d[0][0] - want.1).abs() < 1e-12,
            "{update:?} n_critic {n_critic}: step ({}, {}), M p {want:?}",
            g[0][0],
            d[0][0]
        );
    }
}

/// With the `wgpu` feature and a wgpu adapter (a GPU, or Mesa's lavapipe): the exact game
/// Jacobian of a WGAN-GP game (the penalty's third derivatives through nested autodiff)
/// computed on the GPU in f32 (`probe.device = "trial"`) against the CPU in f64 at the same
/// point: the same matrix up to f32 rounding.
#[cfg(feature = "wgpu")]
#[test]
fn probe_products_on_a_gpu_match_the_cpu_in_f64() {
    use ganlab::probe::field::ProbeOn;
    use ganlab::spec::{BackendKind, ProbeDevice, ProbeProduct};
    if let Err(e) = ganlab::backend::check_wgpu() {
        eprintln!("SKIPPED: {e:#}");
        return;
    }
    let mut cfg = TrialConfig::default();
    if let ganlab::spec::GeneratorConfig::Mlp(m) = &mut cfg.generator {
        m.width = 8;
    }
    if let ganlab::spec::DiscriminatorConfig::Mlp(m) = &mut cfg.discriminator {
        m.width = 8;
    }
    cfg.objective.loss = Loss::WganGp;
    cfg.backend = BackendKind::Wgpu;
    cfg.probe.device = ProbeDevice::Trial;
    let gpu = GameField::from_config(&cfg, 64).unwrap();
    assert_eq!(gpu.on, ProbeOn::Wgpu);
    let mut on_cpu = cfg.clone();
    on_cpu.probe.device = ProbeDevice::Cpu;
    let cpu = GameField::from_config(&on_cpu, 64).unwrap();
    assert_eq!(cpu.on, ProbeOn::Cpu);
    let mut cpu_cfg = on_cpu.clone();
    cpu_cfg.backend = BackendKind::Cpu;
    cpu_cfg.precision = ganlab::spec::Precision::F64;
    let p = ganlab::train::Trainer::<CpuF64>::new(&cpu_cfg, CPU)
        .unwrap()
        .flat_parameters();
    let jg = ganlab::probe::jacobian(&gpu, &p, ProbeProduct::Exact);
    let jc = ganlab::probe::jacobian(&cpu, &p, ProbeProduct::Exact);
    let scale = jc.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = jg
        .iter()
        .zip(&jc)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("GPU (f32) vs CPU (f64) Jacobian: largest difference {worst:.2e}, largest entry {scale:.2e}");
    assert!(worst <= 1e-4 * scale, "{worst} of {scale}");
}
