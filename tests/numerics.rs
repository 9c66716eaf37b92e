//! Numbers against closed forms and finite differences.

mod common;

use burn::tensor::Tensor;

use ganlab::backend::{host, matrix, CpuF32, CpuF64, CPU, CPU_F32};
use ganlab::game::penalty::{gradient_penalty, squared_gradient_penalty};
use ganlab::nets::Net;
use ganlab::spec::{
    Activation, DiscriminatorConfig, GeneratorConfig, Loss, TrialConfig, UpdateScheme,
};
use ganlab::train::Trainer;

type B64 = CpuF64;

fn sigmoid(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}
fn softplus(t: f64) -> f64 {
    (1.0 + t.exp()).ln()
}

/// The Dirac-GAN of Mescheder et al. at (theta, psi), trained by plain SGD with step 1 so that
/// each update equals minus the gradient.
fn dirac(loss: Loss, theta: f64, psi: f64, update: UpdateScheme) -> TrialConfig {
    let mut c = common::dirac_game(loss, theta, psi, 1.0);
    c.train.update = update;
    c
}

/// Closed forms with D(x) = psi x, G = theta, data at 0 (module docs of `game::loss`):
/// returns (L_G, L_D, dL_G/dtheta, dL_D/dpsi).
fn closed_form(loss: Loss, theta: f64, psi: f64) -> (f64, f64, f64, f64) {
    let t = psi * theta;
    match loss {
        Loss::Minimax => (
            -softplus(t),
            2f64.ln() + softplus(t),
            -sigmoid(t) * psi,
            sigmoid(t) * theta,
        ),
        Loss::NonSaturating => (
            softplus(-t),
            2f64.ln() + softplus(t),
            -sigmoid(-t) * psi,
            sigmoid(t) * theta,
        ),
        Loss::WganClip | Loss::WganGp => (-t, t, -psi, theta),
        _ => unreachable!(),
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

#[test]
fn dirac_gan_gradients_and_norms_equal_their_closed_forms() {
    let points = [(1.0, 1.0), (0.5, -2.0), (-1.5, 0.3), (2.0, 0.0), (0.0, 1.7)];
    for loss in [Loss::Minimax, Loss::NonSaturating, Loss::WganClip] {
        // Weight clipping would move psi after the step; a wide bound keeps the raw update.
        for &(theta, psi) in &points {
            let mut cfg = dirac(loss, theta, psi, UpdateScheme::Simultaneous);
            cfg.objective.clip = 100.0;
            let mut t = Trainer::<B64>::new(&cfg, CPU).unwrap();
            let s = t.step();
            let (lg, ld, gt, gp) = closed_form(loss, theta, psi);
            let what = format!("{loss:?} at ({theta}, {psi})");
            assert!(
                close(s.loss_g, lg, 1e-12),
                "{what}: loss_g {} vs {lg}",
                s.loss_g
            );
            assert!(
                close(s.loss_d, ld, 1e-12),
                "{what}: loss_d {} vs {ld}",
                s.loss_d
            );
            // Gradient norms: Euclidean, per tensor and per player.
            assert!(
                close(s.grad_sq_g[0].sqrt(), gt.abs(), 1e-12),
                "{what}: |grad_theta|"
            );
            assert!(
                close(s.grad_sq_d[0].sqrt(), gp.abs(), 1e-12),
                "{what}: |grad_psi|"
            );
            // The update with SGD step 1 is minus the gradient: checks the signs.
            let (g, d) = t.parameter_values();
            assert!(
                close(g[0][0], theta - gt, 1e-12),
                "{what}: theta after step {}",
                g[0][0]
            );
            assert!(
                close(d[0][0], psi - gp, 1e-12),
                "{what}: psi after step {}",
                d[0][0]
            );
        }
    }
}

#[test]
fn alternating_updates_use_the_new_discriminator() {
    let (theta, psi) = (1.0, 0.5);
    let mut cfg = dirac(Loss::WganClip, theta, psi, UpdateScheme::Alternating);
    cfg.objective.clip = 100.0;
    let mut t = Trainer::<B64>::new(&cfg, CPU).unwrap();
    t.step();
    // psi' = psi - theta; then theta' = theta + psi' (WGAN: dL_G/dtheta = -psi').
    let (g, d) = t.parameter_values();
    assert!(close(d[0][0], psi - theta, 1e-12));
    assert!(close(g[0][0], theta + (psi - theta), 1e-12));
}

#[test]
fn r1_on_the_dirac_gan_adds_gamma_psi() {
    let (theta, psi, gamma) = (0.7, -0.4, 0.3);
    let mut cfg = dirac(Loss::NonSaturating, theta, psi, UpdateScheme::Simultaneous);
    cfg.objective.regulariser = ganlab::spec::Regulariser::R1;
    cfg.objective.reg_weight = gamma;
    let s = Trainer::<B64>::new(&cfg, CPU).unwrap().step();
    let (_, ld, _, gp) = closed_form(Loss::NonSaturating, theta, psi);
    // R1 = gamma/2 psi^2, so dL_D/dpsi gains gamma psi.
    assert!(close(s.loss_d, ld + gamma / 2.0 * psi * psi, 1e-12));
    assert!(close(
        s.grad_sq_d[0].sqrt(),
        (gp + gamma * psi).abs(),
        1e-12
    ));
}

/// A small MLP critic and a fixed batch.
fn setup(act: Activation) -> (Net, Vec<Vec<f64>>, Vec<f64>, Vec<f64>, Vec<f64>) {
    use rand::Rng;
    let net = Net::Mlp {
        dims: vec![3, 5, 4, 1],
        activation: act,
    };
    let mut rng = ganlab::rng::stream(11, ganlab::rng::Stream::Eval);
    let phi = net.init(&mut rng);
    let n = 6;
    let real: Vec<f64> = (0..n * 3).map(|_| rng.random_range(-1.5..1.5)).collect();
    let fake: Vec<f64> = (0..n * 3).map(|_| rng.random_range(-1.5..1.5)).collect();
    let eps: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
    (net, phi, real, fake, eps)
}

#[derive(Clone, Copy, Debug)]
enum Pen {
    Gp,
    R1,
    R2,
}

/// The penalty's value at phi, on the plain or the autodiff backend.
fn penalty<B: ganlab::backend::GanBackend>(
    kind: Pen,
    net: &Net,
    phi: &[Tensor<B, 2>],
    real: &[f64],
    fake: &[f64],
    eps: &[f64],
    dev: &B::Device,
) -> Tensor<B, 1> {
    let n = eps.len();
    let r = matrix::<B>(real.to_vec(), n, 3, dev);
    let f = matrix::<B>(fake.to_vec(), n, 3, dev);
    match kind {
        Pen::Gp => gradient_penalty(
            net,
            phi,
            r,
            f,
            matrix::<B>(eps.to_vec(), n, 1, dev),
            10.0,
            false,
        ),
        Pen::R1 => squared_gradient_penalty(net, phi, r, 10.0, false),
        Pen::R2 => squared_gradient_penalty(net, phi, f, 10.0, false),
    }
}

fn exact_grad<B: ganlab::backend::GanBackend>(
    kind: Pen,
    act: Activation,
    dev: &B::Device,
) -> (f64, Vec<Vec<f64>>) {
    let (net, phi, real, fake, eps) = setup(act);
    let specs = net.param_specs();
    let tracked: Vec<Tensor<B, 2>> = specs
        .iter()
        .zip(&phi)
        .map(|(s, v)| matrix::<B>(v.clone(), s.rows, s.cols, dev).require_grad())
        .collect();
    let p = penalty(kind, &net, &tracked, &real, &fake, &eps, dev);
    let grads = p.backward();
    // The last bias does not reach the input gradient: no gradient is a zero gradient.
    let g = tracked
        .iter()
        .map(|t| {
            t.grad(&grads)
                .map(host)
                .unwrap_or_else(|| vec![0.0; t.shape().num_elements()])
        })
        .collect();
    (host(p)[0], g)
}

#[test]
fn input_gradient_penalties_match_central_finite_differences_in_f64() {
    for act in [
        Activation::Tanh,
        Activation::LeakyRelu,
        Activation::Sigmoid,
        Activation::Elu,
        Activation::Relu,
    ] {
        for kind in [Pen::Gp, Pen::R1, Pen::R2] {
            let (net, phi, real, fake, eps) = setup(act);
            let specs = net.param_specs();
            let (_, exact) = exact_grad::<B64>(kind, act, &CPU);
            let value = |phi: &Vec<Vec<f64>>| -> f64 {
                let t: Vec<Tensor<B64, 2>> = specs
                    .iter()
                    .zip(phi)
                    .map(|(s, v)| matrix::<B64>(v.clone(), s.rows, s.cols, &CPU))
                    .collect();
                host(penalty(kind, &net, &t, &real, &fake, &eps, &CPU))[0]
            };
            let h = 1e-5;
            let (mut diff, mut norm) = (0.0f64, 0.0f64);
            let mut nonzero = 0;
            for (i, tensor) in phi.iter().enumerate() {
                for j in 0..tensor.len() {
                    let mut plus = phi.clone();
                    plus[i][j] += h;
                    let mut minus = phi.clone();
                    minus[i][j] -= h;
                    let fd = (value(&plus) - value(&minus)) / (2.0 * h);
                    diff += (exact[i][j] - fd).powi(2);
                    norm += fd * fd;
                    if fd.abs() > 1e-8 {
                        nonzero += 1;
                    }
                }
            }
            let rel = diff.sqrt() / norm.sqrt();
            assert!(
                nonzero > 10,
                "{kind:?} {act:?}: gradient is mostly zero, the test would be void"
            );
            assert!(rel < 1e-6, "{kind:?} {act:?}: relative error {rel:e}");
        }
    }
}

#[test]
fn flex_f32_penalty_gradients_agree_with_ndarray_f64() {
    for kind in [Pen::Gp, Pen::R1, Pen::R2] {
        let (v64, g64) = exact_grad::<B64>(kind, Activation::Tanh, &CPU);
        let (v32, g32) = exact_grad::<CpuF32>(kind, Activation::Tanh, &CPU_F32);
        assert!(close(v32, v64, 1e-5), "{kind:?}: value {v32} vs {v64}");
        let a: Vec<f64> = g64.into_iter().flatten().collect();
        let b: Vec<f64> = g32.into_iter().flatten().collect();
        let err = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!(
            err / norm < 1e-4,
            "{kind:?}: f32 flex vs f64 relative error {}",
            err / norm
        );
    }
}

#[test]
fn same_seed_same_numbers_different_seed_different_numbers() {
    let mut cfg = TrialConfig::default();
    cfg.train.batch = 32;
    if let GeneratorConfig::Mlp(m) = &mut cfg.generator {
        m.width = 16;
    }
    if let DiscriminatorConfig::Mlp(m) = &mut cfg.discriminator {
        m.width = 16;
    }
    let run = |seed: u64| {
        let mut c = cfg.clone();
        c.seed = seed;
        let mut t = Trainer::<CpuF32>::new(&c, CPU_F32).unwrap();
        (0..5).map(|_| t.step()).collect::<Vec<_>>()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

/// The WGAN Dirac-GAN (the bilinear game v = (-psi, theta)) on SGD with step `eta`, without
/// a binding clip.
fn bilinear(theta: f64, psi: f64, eta: f64, update: UpdateScheme) -> Trainer<B64> {
    let mut c = common::dirac_game(Loss::WganClip, theta, psi, eta);
    c.objective.clip = 100.0;
    c.train.update = update;
    Trainer::<B64>::new(&c, CPU).unwrap()
}

fn point(t: &Trainer<B64>) -> (f64, f64) {
    let (g, d) = t.parameter_values();
    (g[0][0], d[0][0])
}

#[test]
fn extragradient_on_the_bilinear_game_contracts_by_its_closed_form_radius() {
    for eta in [0.05, 0.2, 0.5] {
        let (theta, psi) = (1.0, 0.5);
        let mut t = bilinear(theta, psi, eta, UpdateScheme::Extragradient);
        // One step: (theta, psi) -> ((1 - eta^2) theta + eta psi, (1 - eta^2) psi - eta theta).
        let s = t.step();
        let (a, b) = point(&t);
        let k = 1.0 - eta * eta;
        assert!(
            close(a, k * theta + eta * psi, 1e-12),
            "eta {eta}: theta {a}"
        );
        assert!(close(b, k * psi - eta * theta, 1e-12), "eta {eta}: psi {b}");
        // Measured at the start of the step, as every scheme's row.
        assert!(close(s.loss_d, theta * psi, 1e-12));
        // Every step scales the distance by sqrt(1 - eta^2 + eta^4) (a scaled rotation).
        for _ in 0..19 {
            t.step();
        }
        let (a, b) = point(&t);
        let radius = (1.0 - eta * eta + eta.powi(4)).sqrt();
        let want = theta.hypot(psi) * radius.powi(20);
        assert!(
            close(a.hypot(b), want, 1e-10),
            "eta {eta}: {} vs {want}",
            a.hypot(b)
        );
    }
}

#[test]
fn alternating_with_the_generator_first_uses_the_new_generator() {
    let (theta, psi, eta) = (1.0, 0.5, 0.1);
    let mut t = bilinear(theta, psi, eta, UpdateScheme::AlternatingGFirst);
    let s = t.step();
    // theta' = theta + eta psi (dL_G/dtheta = -psi); then psi' = psi - eta theta'.
    let theta1 = theta + eta * psi;
    let (a, b) = point(&t);
    assert!(
        close(a, theta1, 1e-12) && close(b, psi - eta * theta1, 1e-12),
        "{a} {b}"
    );
    // L_G is measured at the start, L_D after the generator's update.
    assert!(close(s.loss_g, -theta * psi, 1e-12));
    assert!(close(s.loss_d, theta1 * psi, 1e-12));
}

/// The exact gradient flow of the bilinear game from (theta0, psi0) at time t: a rotation,
/// d(theta, psi)/dt = (psi, -theta).
fn bilinear_flow(theta0: f64, psi0: f64, t: f64) -> (f64, f64) {
    (
        theta0 * t.cos() + psi0 * t.sin(),
        psi0 * t.cos() - theta0 * t.sin(),
    )
}

#[test]
fn rk4_follows_the_bilinear_flow_with_fourth_order_error() {
    let (theta, psi, horizon) = (1.0, 0.5, 2.0);
    let error = |h: f64| {
        let mut t = bilinear(theta, psi, h, UpdateScheme::Rk4);
        let steps = (horizon / h).round() as usize;
        for _ in 0..steps {
            t.step();
        }
        let (a, b) = point(&t);
        let (x, y) = bilinear_flow(theta, psi, horizon);
        (a - x).hypot(b - y)
    };
    let (coarse, fine) = (error(0.1), error(0.05));
    let order = (coarse / fine).log2();
    assert!(
        (order - 4.0).abs() < 0.3,
        "errors {coarse:e}, {fine:e}: order {order}"
    );
    assert!(coarse < 1e-5, "{coarse:e}");
    // And the distance to the equilibrium stays put over a long time (RK4's own drift is
    // O(h^6) per step; 100 time units at h = 0.01).
    let mut t = bilinear(theta, psi, 0.01, UpdateScheme::Rk4);
    for _ in 0..10_000 {
        t.step();
    }
    let (a, b) = point(&t);
    assert!(
        (a.hypot(b) - theta.hypot(psi)).abs() < 1e-6,
        "{}",
        a.hypot(b)
    );
}

#[test]
fn optimistic_steps_follow_their_recursion_and_converge_on_the_bilinear_game() {
    let (theta, psi, eta) = (1.0, 0.5, 0.2);
    let mut t = bilinear(theta, psi, eta, UpdateScheme::Optimistic);
    // By hand: v = (-psi, theta); the first step plain, then p - 2 eta v_t + eta v_{t-1}.
    let v = |(a, b): (f64, f64)| (-b, a);
    let mut p = (theta, psi);
    let mut prev: Option<(f64, f64)> = None;
    for step in 0..30 {
        t.step();
        let g = v(p);
        p = match prev {
            None => (p.0 - eta * g.0, p.1 - eta * g.1),
            Some(q) => (
                p.0 - 2.0 * eta * g.0 + eta * q.0,
                p.1 - 2.0 * eta * g.1 + eta * q.1,
            ),
        };
        prev = Some(g);
        let got = point(&t);
        assert!(
            close(got.0, p.0, 1e-12) && close(got.1, p.1, 1e-12),
            "step {step}: {got:?} vs {p:?}"
        );
    }
    // Where simultaneous steps spiral out, optimism converges.
    for _ in 0..470 {
        t.step();
    }
    let (a, b) = point(&t);
    assert!(a.hypot(b) < 0.1 * theta.hypot(psi), "{}", a.hypot(b));
}

#[test]
fn consensus_on_the_bilinear_game_adds_gamma_times_the_point() {
    // v = J p with J = [[0, -1], [1, 0]], so J^T v = J^T J p = p, and an SGD step is
    // p <- ((1 - eta gamma) I - eta J) p: the distance shrinks by sqrt((1 - eta gamma)^2 + eta^2).
    let (theta, psi, eta) = (1.0, 0.5, 0.1);
    for gamma in [0.0, 0.5, 1.0] {
        let mut c = common::dirac_game(Loss::WganClip, theta, psi, eta);
        c.objective.clip = 100.0;
        c.train.update = UpdateScheme::Consensus;
        c.train.consensus_weight = gamma;
        let mut t = Trainer::<B64>::new(&c, CPU).unwrap();
        let s = t.step();
        let k = 1.0 - eta * gamma;
        let (a, b) = point(&t);
        assert!(
            close(a, k * theta + eta * psi, 1e-12),
            "gamma {gamma}: theta {a}"
        );
        assert!(
            close(b, k * psi - eta * theta, 1e-12),
            "gamma {gamma}: psi {b}"
        );
        // The recorded gradient norms are the players' own: |dL_G/dtheta| = |psi|.
        assert!(close(s.grad_sq_g[0].sqrt(), psi, 1e-12));
        for _ in 0..19 {
            t.step();
        }
        let (a, b) = point(&t);
        let want = theta.hypot(psi) * (k * k + eta * eta).sqrt().powi(20);
        assert!(
            close(a.hypot(b), want, 1e-10),
            "gamma {gamma}: {} vs {want}",
            a.hypot(b)
        );
    }
}

#[test]
fn sga_on_the_bilinear_game_adds_lambda_times_the_point() {
    // A = J and J^T J = I here, so A^T v = J^T J p = p; <v, grad H> = <J p, p> = 0, so the
    // alignment rule picks +lambda, and an SGD step is p <- ((1 - eta lambda) I - eta J) p.
    let (theta, psi, eta) = (1.0, 0.5, 0.1);
    for (lambda, align) in [(1.0, true), (0.5, false), (0.0, true)] {
        let mut c = common::dirac_game(Loss::WganClip, theta, psi, eta);
        c.objective.clip = 100.0;
        c.train.update = UpdateScheme::Sga;
        c.train.sga_weight = lambda;
        c.train.sga_align = align;
        let mut t = Trainer::<B64>::new(&c, CPU).unwrap();
        t.step();
        let k = 1.0 - eta * lambda;
        let (a, b) = point(&t);
        assert!(
            close(a, k * theta + eta * psi, 1e-12) && close(b, k * psi - eta * theta, 1e-12),
            "lambda {lambda}: ({a}, {b})"
        );
        for _ in 0..19 {
            t.step();
        }
        let (a, b) = point(&t);
        let want = theta.hypot(psi) * (k * k + eta * eta).sqrt().powi(20);
        assert!(close(a.hypot(b), want, 1e-10), "lambda {lambda}");
    }
}

/// Parameter tensors as one flat host vector, and back.
fn flat(ps: &[Tensor<ganlab::train::Inner<B64>, 2>]) -> Vec<f64> {
    ps.iter().flat_map(|p| host(p.clone())).collect()
}
fn unflat(
    values: &[f64],
    like: &[Tensor<ganlab::train::Inner<B64>, 2>],
) -> Vec<Tensor<ganlab::train::Inner<B64>, 2>> {
    let mut at = 0;
    like.iter()
        .map(|p| {
            let [r, c] = p.dims();
            at += r * c;
            matrix(values[at - r * c..at].to_vec(), r, c, &CPU)
        })
        .collect()
}

#[test]
fn sga_products_equal_finite_differences_of_the_training_field() {
    use ganlab::spec::Regulariser;
    use ganlab::train::scheme::{both_gradients, sga::adjusted};
    // R2 and WGAN-GP penalise at fake rows, so grad_theta L_D runs through their input gradient.
    for (loss, reg) in [
        (Loss::NonSaturating, Regulariser::R1),
        (Loss::NonSaturating, Regulariser::R2),
        (Loss::WganGp, Regulariser::R1),
    ] {
        let loss_reg = format!("{loss:?} + {reg:?}");
        let mut c = TrialConfig::default();
        c.precision = ganlab::spec::Precision::F64;
        c.objective.loss = loss;
        c.objective.regulariser = reg;
        c.objective.reg_weight = 0.7;
        c.latent.dim = 2;
        c.train.batch = 8;
        c.train.update = UpdateScheme::Sga;
        c.train.sga_weight = 0.8;
        c.generator = GeneratorConfig::Mlp(ganlab::spec::MlpConfig {
            depth: 1,
            width: 4,
            activation: Activation::Tanh,
        });
        c.discriminator = DiscriminatorConfig::Mlp(ganlab::spec::MlpConfig {
            depth: 1,
            width: 4,
            activation: Activation::Tanh,
        });
        let t = Trainer::<B64>::new(&c, CPU).unwrap();
        let f = &t.field;
        let batch = f.batch(0, &mut t.state.streams.clone());
        let (theta, phi) = (&t.state.theta, &t.state.phi);
        let (ng, p0) = (flat(theta).len(), [flat(theta), flat(phi)].concat());
        let n = p0.len();
        let v_at = |p: &[f64]| -> Vec<f64> {
            let ((_, g_phi), (_, g_theta)) = both_gradients(
                f,
                &unflat(&p[..ng], theta),
                &unflat(&p[ng..], phi),
                batch.clone(),
            );
            [flat(&g_theta), flat(&g_phi)].concat()
        };
        // J by central differences, column by column.
        let h = 1e-5;
        let mut jac = vec![0.0; n * n];
        for j in 0..n {
            let (mut up, mut down) = (p0.clone(), p0.clone());
            up[j] += h;
            down[j] -= h;
            let (a, b) = (v_at(&up), v_at(&down));
            for i in 0..n {
                jac[i * n + j] = (a[i] - b[i]) / (2.0 * h);
            }
        }
        let a = adjusted(f, theta, phi, batch.clone());
        let v = flat(&a.v);
        assert_eq!(v, v_at(&p0), "{loss_reg}: v is the training field");
        let jv: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| jac[i * n + j] * v[j]).sum())
            .collect();
        let jtv: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| jac[j * n + i] * v[j]).sum())
            .collect();
        let (e_jv, size) = common::relative_error(&flat(&a.j_v), &jv);
        let (e_jtv, _) = common::relative_error(&flat(&a.jt_v), &jtv);
        // Not void: J v is not zero, and J is not symmetric here (A v is not zero).
        let (asym, _) = common::relative_error(&jv, &jtv);
        assert!(
            size > 1e-8 && asym > 1e-2,
            "{loss_reg}: |J v|^2 {size:e}, asymmetry {asym:e}"
        );
        assert!(e_jv < 1e-6, "{loss_reg}: J v off by {e_jv:e}");
        assert!(e_jtv < 1e-6, "{loss_reg}: J^T v off by {e_jtv:e}");
        // The rule's sign, and w = v + lambda (J^T v - J v) / 2.
        let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
        let at_v: Vec<f64> = jtv.iter().zip(&jv).map(|(a, b)| (a - b) / 2.0).collect();
        let sign = (dot(&v, &jtv) * dot(&at_v, &jtv) / n as f64 + 0.1).signum();
        assert_eq!(a.lambda, 0.8 * sign, "{loss_reg}");
        let w: Vec<f64> = v
            .iter()
            .zip(&at_v)
            .map(|(v, x)| v + 0.8 * sign * x)
            .collect();
        let got = [flat(&a.w_theta), flat(&a.w_phi)].concat();
        let (e_w, _) = common::relative_error(&got, &w);
        assert!(e_w < 1e-6, "{loss_reg}: w off by {e_w:e}");
    }
}

/// Runs a flow trial until its clock passes `horizon`; returns the point and the steps.
fn run_flow(t: &mut Trainer<B64>, horizon: f64) -> Vec<ganlab::train::FlowStats> {
    let mut clocks = Vec::new();
    while t.state.scalars.get("flow/time").copied().unwrap_or(0.0) < horizon {
        clocks.push(t.step().flow.expect("a flow scheme records its clock"));
    }
    clocks
}

#[test]
fn rk45_keeps_the_dirac_gans_invariant_and_follows_the_bilinear_flow() {
    // Unregularised Dirac-GAN (minimax): d(theta^2 + psi^2)/dt = 0 along the flow.
    let mut c = common::dirac_game(Loss::Minimax, 1.0, 1.0, 0.1);
    c.train.update = UpdateScheme::Rk45;
    c.train.rtol = 1e-10;
    c.train.atol = 1e-12;
    let mut t = Trainer::<B64>::new(&c, CPU).unwrap();
    let clocks = run_flow(&mut t, 100.0);
    let (a, b) = point(&t);
    assert!((a * a + b * b - 2.0).abs() < 1e-6, "{}", a * a + b * b);
    // The clock is the sum of the steps taken, and the steps adapt (none is the first try).
    let end = t.state.scalars["flow/time"];
    let summed: f64 = clocks.iter().map(|c| c.step_size).sum();
    assert!((end - summed).abs() < 1e-9 * end, "{end} vs {summed}");
    let (lo, hi) = clocks.iter().fold((f64::MAX, 0f64), |(l, h), c| {
        (l.min(c.step_size), h.max(c.step_size))
    });
    assert!(hi > lo * 1.5, "step sizes {lo}..{hi}");
    for w in clocks.windows(2) {
        assert!((w[1].time - (w[0].time + w[0].step_size)).abs() < 1e-12 * (1.0 + w[1].time));
    }

    // The bilinear game: the flow is a rotation; at the default tolerances the error at each
    // recorded time stays within a few tolerances of the closed form.
    let mut c = common::dirac_game(Loss::WganClip, 1.0, 0.5, 0.1);
    c.objective.clip = 100.0;
    c.train.update = UpdateScheme::Rk45;
    let mut t = Trainer::<B64>::new(&c, CPU).unwrap();
    let clocks = run_flow(&mut t, 10.0);
    let (a, b) = point(&t);
    let end = t.state.scalars["flow/time"];
    let (x, y) = bilinear_flow(1.0, 0.5, end);
    let err = (a - x).hypot(b - y);
    assert!(
        err < 1e-5,
        "error {err:e} at t = {end} after {} steps",
        clocks.len()
    );
    // Tighter tolerances, smaller error, more steps.
    c.train.rtol = 1e-9;
    c.train.atol = 1e-12;
    let mut tight = Trainer::<B64>::new(&c, CPU).unwrap();
    let tight_clocks = run_flow(&mut tight, 10.0);
    let (a, b) = point(&tight);
    let (x, y) = bilinear_flow(1.0, 0.5, tight.state.scalars["flow/time"]);
    let tight_err = (a - x).hypot(b - y);
    assert!(tight_err < err / 10.0, "{tight_err:e} vs {err:e}");
    assert!(tight_clocks.len() > clocks.len());
}

#[test]
fn the_drift_of_simultaneous_steps_is_their_distance_to_the_rotation() {
    // Simultaneous SGD on the bilinear game: p_k = (I - h J)^k p_0; the flow from p_0 at time
    // k h is the rotation; the recorded drift of row k is the distance between them.
    let (theta, psi, h) = (1.0, 0.5, 0.1);
    let mut c = common::dirac_game(Loss::WganClip, theta, psi, h);
    c.objective.clip = 100.0;
    c.record.drift = true;
    c.train.rtol = 1e-10;
    c.train.atol = 1e-12;
    let mut t = Trainer::<B64>::new(&c, CPU).unwrap();
    let mut p = (theta, psi);
    let mut worst = 0f64;
    for k in 0..60 {
        let got = t.step().drift.expect("drift is recorded");
        let q = bilinear_flow(theta, psi, k as f64 * h);
        let want = (p.0 - q.0).hypot(p.1 - q.1);
        worst = worst.max((got - want).abs());
        // v = (-psi, theta): p <- p - h v.
        p = (p.0 + h * p.1, p.1 - h * p.0);
    }
    assert!(worst < 1e-8, "worst {worst:e}");
    // Not void: after 60 steps the two are far apart.
    let q = bilinear_flow(theta, psi, 60.0 * h);
    assert!((p.0 - q.0).hypot(p.1 - q.1) > 0.1);
}

/// A small MLP game in f64 with spectral normalisation of the discriminator.
fn spectral_game() -> TrialConfig {
    let mut c = TrialConfig::default();
    c.precision = ganlab::spec::Precision::F64;
    c.objective.spectral_norm = true;
    c.train.batch = 16;
    let mlp = |depth, width| ganlab::spec::MlpConfig {
        depth,
        width,
        activation: Activation::Tanh,
    };
    c.generator = GeneratorConfig::Mlp(mlp(1, 8));
    c.discriminator = DiscriminatorConfig::Mlp(mlp(2, 16));
    c
}

/// Largest singular value of a row-major matrix.
fn largest_singular_value(values: &[f64], rows: usize, cols: usize) -> f64 {
    let m = nalgebra::DMatrix::from_row_slice(rows, cols, values);
    m.singular_values().max()
}

#[test]
fn spectral_normalisation_gives_each_weight_a_largest_singular_value_of_one() {
    let c = spectral_game();
    let mut t = Trainer::<B64>::new(&c, CPU).unwrap();
    for _ in 0..20 {
        t.step();
    }
    let specs = t.setup().game.discriminator.param_specs();
    t.field.spectral = ganlab::train::spectral::vectors(t.setup(), &t.state);
    let view = t.field.discriminator_view(&t.state.phi);
    let mut raw_far_from_one = false;
    let mut weights = 0;
    for (i, s) in specs.iter().enumerate() {
        if !ganlab::game::spectral::is_weight(s) {
            assert_eq!(
                host(view[i].clone()),
                host(t.state.phi[i].clone()),
                "{}",
                s.name
            );
            continue;
        }
        weights += 1;
        let normalised = largest_singular_value(&host(view[i].clone()), s.rows, s.cols);
        assert!((normalised - 1.0).abs() < 1e-3, "{}: {normalised}", s.name);
        let raw = largest_singular_value(&host(t.state.phi[i].clone()), s.rows, s.cols);
        raw_far_from_one |= (raw - 1.0).abs() > 0.1;
    }
    assert_eq!(weights, 3);
    assert!(
        raw_far_from_one,
        "the raw weights are already normalised: the test says nothing"
    );
}

#[test]
fn the_spectrally_normalised_discriminator_gradient_runs_through_sigma() {
    // grad_phi L_D(W / sigma(W)), sigma = v^T W u with u, v fixed, against central differences
    // of that loss (a gradient that treated sigma as a constant fails this by ~1e-1).
    let c = spectral_game();
    let mut t = Trainer::<B64>::new(&c, CPU).unwrap();
    for _ in 0..3 {
        t.step();
    }
    t.field.spectral = ganlab::train::spectral::vectors(t.setup(), &t.state);
    let f = &t.field;
    let batch = f.batch(0, &mut t.state.streams.clone());
    let (theta, phi) = (&t.state.theta, &t.state.phi);
    let (_, grads) = f.discriminator_gradient(theta, phi, batch.clone());
    let game = &f.setup.game;
    let fake = game.fake(theta, batch.z.clone());
    let up = |t: Tensor<ganlab::train::Inner<B64>, 2>| Tensor::<B64, 2>::from_inner(t);
    let loss = |p: &[f64]| -> f64 {
        let lifted: Vec<_> = unflat(p, phi).into_iter().map(up).collect();
        let view = f.discriminator_view(&lifted);
        let l = game.discriminator_loss(&view, up(batch.real.clone()), up(fake.clone()), None);
        host(l.loss)[0]
    };
    let p0 = flat(phi);
    let h = 1e-6;
    let fd: Vec<f64> = (0..p0.len())
        .map(|j| {
            let (mut a, mut b) = (p0.clone(), p0.clone());
            a[j] += h;
            b[j] -= h;
            (loss(&a) - loss(&b)) / (2.0 * h)
        })
        .collect();
    let (err, size) = common::relative_error(&flat(&grads), &fd);
    assert!(err < 1e-6 && size > 1e-8, "error {err:e}, |fd|^2 {size:e}");
}

#[test]
fn rk45_at_an_exact_equilibrium_stays_there_with_bounded_steps() {
    // v = 0 exactly: the error is 0 every step, and the step would grow by 5 each time until
    // it overflowed to infinity (0 * inf = NaN) without the cap.
    let mut c = common::dirac_game(Loss::Minimax, 0.0, 0.0, 0.1);
    c.train.update = UpdateScheme::Rk45;
    let mut t = Trainer::<B64>::new(&c, CPU).unwrap();
    for _ in 0..600 {
        let s = t.step();
        let f = s.flow.unwrap();
        assert!(s.loss_d.is_finite() && f.step_size <= 0.1 * ganlab::train::flow::MAX_STEP_FACTOR);
    }
    assert_eq!(point(&t), (0.0, 0.0));
}
