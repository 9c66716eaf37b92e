//! Image data and DCGAN players: shapes, exact second derivatives through convolutions and
//! normalisations (against central finite differences in f64), and the probe's Jacobian of a
//! small DCGAN game.

mod common;

use burn::tensor::Tensor;

use ganlab::backend::{host, matrix, CpuF64, CPU};
use ganlab::data::images::ImageShape;
use ganlab::game::penalty::{gradient_penalty, squared_gradient_penalty};
use ganlab::nets::dcgan::{Dcgan, Role};
use ganlab::nets::Net;
use ganlab::spec::Norm;

type B64 = CpuF64;

fn dcgan(role: Role, channels: usize, size: usize, width: usize, norm: Norm) -> Net {
    Net::Dcgan(Box::new(Dcgan {
        role,
        image: ImageShape { channels, size },
        width,
        norm,
    }))
}

fn tensors(net: &Net, values: &[Vec<f64>]) -> Vec<Tensor<B64, 2>> {
    net.param_specs()
        .iter()
        .zip(values)
        .map(|(s, v)| matrix::<B64>(v.clone(), s.rows, s.cols, &CPU))
        .collect()
}

fn uniform(n: usize, seed: u64) -> Vec<f64> {
    use rand::Rng;
    let mut rng = ganlab::rng::stream(seed, ganlab::rng::Stream::Eval);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

#[test]
fn dcgan_players_map_latent_rows_to_images_and_images_to_scores_at_28_32_and_64() {
    let n = 3;
    for size in [28, 32, 64] {
        for channels in [1, 3] {
            let image = ImageShape { channels, size };
            let g = dcgan(Role::Generator { z_dim: 5 }, channels, size, 4, Norm::Batch);
            let d = dcgan(
                Role::Discriminator { outputs: 1 },
                channels,
                size,
                4,
                Norm::Batch,
            );
            let mut rng = ganlab::rng::stream(1, ganlab::rng::Stream::Eval);
            let (gp, dp) = (g.init(&mut rng), d.init(&mut rng));
            let z = matrix::<B64>(uniform(n * 5, 2), n, 5, &CPU);
            let x = g.forward(&tensors(&g, &gp), z);
            assert_eq!(x.dims(), [n, image.len()], "{size} x {channels}");
            let xs = host(x.clone());
            assert!(xs.iter().all(|v| v.abs() < 1.0), "tanh output");
            let score = d.forward(&tensors(&d, &dp), x);
            assert_eq!(score.dims(), [n, 1]);
            assert!(host(score).iter().all(|v| v.is_finite()));
        }
    }
    // Parameters of a 32 x 32 grey pair of width 4 (halvings 3, base 4), counted by hand:
    // G: proj 5 x (16 4 4) + 256, its norm 2 x 16, up1 16 x (8 16) + norm 2 x 8, up2
    // 8 x (4 16) + norm 2 x 4, out 4 x (1 16) + 1.
    let g = dcgan(Role::Generator { z_dim: 5 }, 1, 32, 4, Norm::Batch);
    let count = |net: &Net| net.param_specs().iter().map(|s| s.len()).sum::<usize>();
    let want_g = 5 * 256 + 256 + 32 + 16 * 128 + 16 + 8 * 64 + 8 + 4 * 16 + 1;
    assert_eq!(count(&g), want_g);
    // D: down0 4 x (1 16) + 4, down1 8 x (4 16) + norm 2 x 8, down2 16 x (8 16) + norm
    // 2 x 16, out (16 4 4) x 1 + 1.
    let d = dcgan(Role::Discriminator { outputs: 1 }, 1, 32, 4, Norm::Batch);
    let want_d = 64 + 4 + 8 * 64 + 16 + 16 * 128 + 32 + 256 + 1;
    assert_eq!(count(&d), want_d);
}

#[test]
fn copies_of_a_dcgan_never_mix() {
    // Two copies with different parameters in one rank-3 pass give what each gives alone: a
    // probe's Jacobian blocks rely on it (grouped convolutions, per-copy normalisation).
    for norm in [Norm::Batch, Norm::Layer, Norm::None] {
        for role in [
            Role::Generator { z_dim: 3 },
            Role::Discriminator { outputs: 1 },
        ] {
            let net = dcgan(role, 3, 16, 2, norm);
            let specs = net.param_specs();
            let mut rng = ganlab::rng::stream(5, ganlab::rng::Stream::Eval);
            let (a, b) = (net.init(&mut rng), net.init(&mut rng));
            let input = match role {
                Role::Generator { .. } => 3,
                Role::Discriminator { .. } => 3 * 16 * 16,
            };
            let n = 4;
            let rows = uniform(n * input, 7);
            let alone = |p: &[Vec<f64>]| {
                host(net.forward(
                    &tensors(&net, p),
                    matrix::<B64>(rows.clone(), n, input, &CPU),
                ))
            };
            let stacked: Vec<Tensor<B64, 3>> = specs
                .iter()
                .zip(a.iter().zip(&b))
                .map(|(s, (x, y))| {
                    let mut v = x.clone();
                    v.extend(y);
                    Tensor::from_data(burn::tensor::TensorData::new(v, [2, s.rows, s.cols]), &CPU)
                })
                .collect();
            let mut both_rows = rows.clone();
            both_rows.extend(&rows);
            let x: Tensor<B64, 3> = Tensor::from_data(
                burn::tensor::TensorData::new(both_rows, [2, n, input]),
                &CPU,
            );
            let both = host(net.forward(&stacked, x));
            let (ya, yb) = (alone(&a), alone(&b));
            assert_ne!(ya, yb);
            let joined: Vec<f64> = ya.iter().chain(&yb).copied().collect();
            let err = both
                .iter()
                .zip(&joined)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-12, "{norm:?} {role:?}: {err}");
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Pen {
    WganGp,
    R1,
}

/// The penalty's weight gradient through a DCGAN critic of 16 x 16 images (two convolutions,
/// the second normalised), exact and by central differences.
fn penalty_gradients(kind: Pen, norm: Norm) -> (Vec<f64>, Vec<f64>) {
    let channels = 2;
    let net = dcgan(Role::Discriminator { outputs: 1 }, channels, 16, 2, norm);
    let specs = net.param_specs();
    let mut rng = ganlab::rng::stream(3, ganlab::rng::Stream::Eval);
    // Scales away from 1 and shifts away from 0, so their derivatives are exercised.
    let phi: Vec<Vec<f64>> = net
        .init(&mut rng)
        .into_iter()
        .zip(&specs)
        .map(|(v, s)| {
            let u = uniform(v.len(), 9);
            if s.name.ends_with(".w") {
                v.iter().zip(u).map(|(a, b)| 5.0 * a + 0.05 * b).collect()
            } else {
                v.iter().zip(u).map(|(a, b)| a + 0.3 * b).collect()
            }
        })
        .collect();
    let n = 4;
    let x_dim = channels * 256;
    let real = uniform(n * x_dim, 1);
    let fake = uniform(n * x_dim, 2);
    let eps: Vec<f64> = uniform(n, 4).iter().map(|e| (e + 1.0) / 2.0).collect();
    let value = |t: &[Tensor<B64, 2>]| -> Tensor<B64, 1> {
        let r = matrix::<B64>(real.clone(), n, x_dim, &CPU);
        match kind {
            Pen::WganGp => {
                let f = matrix::<B64>(fake.clone(), n, x_dim, &CPU);
                let e = matrix::<B64>(eps.clone(), n, 1, &CPU);
                gradient_penalty(&net, t, r, f, e, 10.0, false)
            }
            Pen::R1 => squared_gradient_penalty(&net, t, r, 10.0, false),
        }
    };
    let tracked: Vec<Tensor<B64, 2>> = tensors(&net, &phi)
        .into_iter()
        .map(|t| t.require_grad())
        .collect();
    let grads = value(&tracked).backward();
    let exact: Vec<f64> = tracked
        .iter()
        .flat_map(|t| {
            t.grad(&grads)
                .map(host)
                .unwrap_or_else(|| vec![0.0; t.shape().num_elements()])
        })
        .collect();
    let h = 1e-5;
    let mut fd = Vec::new();
    for (i, tensor) in phi.iter().enumerate() {
        for j in 0..tensor.len() {
            let at = |delta: f64| {
                let mut p = phi.clone();
                p[i][j] += delta;
                host(value(&tensors(&net, &p)))[0]
            };
            fd.push((at(h) - at(-h)) / (2.0 * h));
        }
    }
    (exact, fd)
}

#[test]
fn r1_and_wgan_gp_weight_gradients_through_a_dcgan_critic_match_finite_differences() {
    for kind in [Pen::WganGp, Pen::R1] {
        for norm in [Norm::Layer, Norm::Batch, Norm::None] {
            let (exact, fd) = penalty_gradients(kind, norm);
            let (rel, _) = common::relative_error(&exact, &fd);
            let nonzero = fd.iter().filter(|x| x.abs() > 1e-8).count();
            assert!(
                nonzero > fd.len() / 2,
                "{kind:?} {norm:?}: gradient mostly zero ({nonzero} of {})",
                fd.len()
            );
            assert!(rel < 1e-6, "{kind:?} {norm:?}: relative error {:e}", rel);
        }
    }
}

/// An IDX file of `count` random `size` x `size` grey images in `dir`. Noise, not shapes:
/// flat backgrounds make many patches identical, so one kink of a (leaky) ReLU is met at many
/// positions at once and central differences jump there.
fn noise_idx(dir: &std::path::Path, count: usize, size: usize) -> std::path::PathBuf {
    let mut bytes = vec![0u8, 0, 8, 3];
    for d in [count, size, size] {
        bytes.extend((d as u32).to_be_bytes());
    }
    bytes.extend(
        uniform(count * size * size, 12)
            .iter()
            .map(|u| ((u + 1.0) * 127.5) as u8),
    );
    let path = dir.join("noise-images-idx3-ubyte");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn image_game(
    images: &std::path::Path,
    loss: ganlab::spec::Loss,
    reg: ganlab::spec::Regulariser,
    norm: Norm,
) -> ganlab::spec::TrialConfig {
    use ganlab::spec::*;
    let mut cfg = TrialConfig::default();
    cfg.data = DataConfig::Images(ImageData {
        source: ImageSource::Idx,
        path: images.to_string_lossy().into_owned(),
        size: 16,
        channels: 1,
        ..Default::default()
    });
    cfg.latent.dim = 3;
    cfg.precision = Precision::F64;
    cfg.generator = GeneratorConfig::Dcgan(DcganConfig {
        width: 2,
        norm: Norm::Batch,
    });
    cfg.discriminator = DiscriminatorConfig::Dcgan(DcganConfig { width: 2, norm });
    cfg.objective.loss = loss;
    cfg.objective.regulariser = reg;
    cfg.probe.batch = 4;
    cfg
}

/// J at `p` column by column, by central differences of the field v, many points per graph.
fn central_differences(field: &ganlab::probe::field::GameField, p: &[f64]) -> Vec<f64> {
    let n = p.len();
    let h = 1e-5;
    let mut fd = vec![0.0; n * n];
    for cols in (0..n).collect::<Vec<_>>().chunks(32) {
        let mut points = Vec::new();
        for &j in cols {
            for s in [h, -h] {
                let mut q = p.to_vec();
                q[j] += s;
                points.extend(q);
            }
        }
        let v = field.fields::<B64>(&points, &CPU);
        for (c, &j) in cols.iter().enumerate() {
            let (plus, minus) = (
                &v[2 * c * n..(2 * c + 1) * n],
                &v[(2 * c + 1) * n..(2 * c + 2) * n],
            );
            for i in 0..n {
                fd[i * n + j] = (plus[i] - minus[i]) / (2.0 * h);
            }
        }
    }
    fd
}

/// Weights `p` scaled up, plus a little noise: DCGAN's initial weights (std
/// 0.02) put most pre-activations within 1e-3 of the (leaky) ReLU's kink, where central
/// differences jump; scaled up, the kinks are rare.
fn away_from_kinks(p: &[f64]) -> Vec<f64> {
    p.iter()
        .zip(uniform(p.len(), 8))
        .map(|(x, u)| 10.0 * x + 0.1 * u)
        .collect()
}

#[test]
fn the_probe_jacobian_of_a_dcgan_game_equals_finite_differences_of_its_field() {
    use ganlab::spec::{Loss, Regulariser};
    let tmp = tempfile::tempdir().unwrap();
    let images = noise_idx(tmp.path(), 40, 16);
    for (loss, reg, norm) in [
        (Loss::NonSaturating, Regulariser::None, Norm::None),
        (Loss::NonSaturating, Regulariser::R1, Norm::Batch),
        (Loss::WganGp, Regulariser::None, Norm::Layer),
        (Loss::Ebgan, Regulariser::None, Norm::Layer),
    ] {
        let mut cfg = image_game(&images, loss, reg, norm);
        if loss == Loss::Ebgan {
            // The auto-encoder's energy and the pull-away term of its codes.
            cfg.discriminator =
                ganlab::spec::DiscriminatorConfig::Ebgan(ganlab::spec::EbganConfig {
                    code_dim: 3,
                    width: 2,
                    norm,
                    ..Default::default()
                });
            cfg.objective.pt_weight = 0.5;
        }
        let trainer = ganlab::train::Trainer::<B64>::new(&cfg, CPU).unwrap();
        let field = &trainer.field.setup.field;
        let p = away_from_kinks(&trainer.flat_parameters());
        assert!(
            field.block_size() > 1,
            "the test must cover copies side by side"
        );
        let exact = field.jacobian::<B64>(&p, &CPU);
        let (rel, size_sq) = common::relative_error(&exact, &central_differences(field, &p));
        assert!(
            size_sq > 1e-6,
            "{loss:?}: J is near zero, the test would be void"
        );
        assert!(rel < 1e-6, "{loss:?} {norm:?}: relative error {:e}", rel);
        // Probes of convolutional games compute on Flex with f64 tensors (NdArray's
        // convolutions are 20x slower): the same Jacobian to rounding, which f32 anywhere in
        // the graph would spoil (1e-7).
        assert!(field.game.convolutional());
        let probed = ganlab::probe::jacobian(field, &p, ganlab::spec::ProbeProduct::Exact);
        let (flex_rel, _) = common::relative_error(&probed, &exact);
        assert!(
            flex_rel < 1e-12,
            "{loss:?} {norm:?}: Flex is {flex_rel:e} from NdArray"
        );
        // One graph per row gives the blocks' numbers (grouped convolutions sum in another
        // order, so not always the same bits; the block size is fixed by the game, so a trial's
        // numbers still do not depend on threads).
        let single = field.jacobian_blocked::<B64>(&p, 1, &CPU);
        let apart = single
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let largest = exact.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(
            apart <= 1e-13 * largest,
            "{loss:?}: blocks and rows {apart:e} apart"
        );
    }
}

#[test]
fn the_jacobian_of_a_skip_gan_around_a_dcgan_equals_finite_differences() {
    use ganlab::spec::{AutoencoderConfig, Loss, PcaGaussianConfig, PriorModelConfig, Regulariser};
    let tmp = tempfile::tempdir().unwrap();
    let images = noise_idx(tmp.path(), 40, 16);
    let priors = [
        PriorModelConfig::PcaGaussian(PcaGaussianConfig {
            components: 2,
            samples: 200,
        }),
        PriorModelConfig::Autoencoder(AutoencoderConfig {
            code_dim: 2,
            depth: 1,
            width: 3,
            steps: 20,
            samples: 200,
            ..Default::default()
        }),
    ];
    for prior in priors {
        // x = P(z) + alpha G(z): G a batch-normed DCGAN, alpha learned, P fine-tuned, so that
        // every kind of generator parameter has its rows and columns in J.
        let mut cfg = image_game(&images, Loss::NonSaturating, Regulariser::R1, Norm::None);
        cfg.prior_model = prior.clone();
        cfg.skip.alpha = 0.7;
        cfg.skip.learn_alpha = true;
        cfg.skip.fine_tune = true;
        let trainer = ganlab::train::Trainer::<B64>::new(&cfg, CPU).unwrap();
        let field = &trainer.field.setup.field;
        let Net::Skip(skip) = &field.game.generator else {
            panic!("{prior:?}: the generator is not the skip-GAN's");
        };
        assert!(matches!(skip.generator, Net::Dcgan(_)), "{prior:?}");
        let names: Vec<String> = field
            .game
            .generator
            .param_specs()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert!(names.iter().any(|n| n == "skip.alpha"), "{names:?}");
        assert!(names.iter().any(|n| n.starts_with("prior.")), "{names:?}");
        let p = away_from_kinks(&trainer.flat_parameters());
        let exact = field.jacobian::<B64>(&p, &CPU);
        let (rel, size_sq) = common::relative_error(&exact, &central_differences(field, &p));
        assert!(size_sq > 1e-6, "{prior:?}: J is near zero");
        assert!(rel < 1e-6, "{prior:?}: relative error {rel:e}");
        // The probe's Jacobian (Flex, f64) is the same to rounding.
        assert!(field.game.convolutional());
        let probed = ganlab::probe::jacobian(field, &p, ganlab::spec::ProbeProduct::Exact);
        let (flex_rel, _) = common::relative_error(&probed, &exact);
        assert!(
            flex_rel < 1e-12,
            "{prior:?}: Flex is {flex_rel:e} from NdArray"
        );
    }
}

const SHAPES_STUDY: &str = r#"
[study]
name = "shapes"
description = "DCGAN on generated shapes (test)"

[base]
steps = 12
[base.data]
kind = "images"
source = "shapes"
size = 8
count = 100
[base.latent]
dim = 4
[base.generator]
kind = "dcgan"
width = 2
[base.discriminator]
kind = "dcgan"
width = 2
norm = "layer"
[base.train]
batch = 8
[base.record]
modes_every = 4
eval_samples = 64
[base.probe]
every = 6
batch = 8

[sweep]
"objective.loss" = ["non_saturating", "wgan_gp"]
seed = [0]
"#;

#[test]
fn a_folder_of_class_subfolders_gets_the_classifier_and_sample_quality() {
    use common::study::{ganlab_env, run_study, text};
    let tmp = tempfile::tempdir().unwrap();
    // Two classes a classifier tells apart at once: dark and bright noise, 20 PNGs each.
    let root = tmp.path().join("pictures");
    for (class, base) in [("bright", 160u8), ("dark", 0u8)] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        let noise = uniform(20 * 100, u64::from(base));
        for i in 0..20 {
            let px: Vec<u8> = noise[i * 100..(i + 1) * 100]
                .iter()
                .map(|u| base + ((u + 1.0) * 40.0) as u8)
                .collect();
            image::GrayImage::from_raw(10, 10, px)
                .unwrap()
                .save(dir.join(format!("{i:02}.png")))
                .unwrap();
        }
    }
    let file = tmp.path().join("folder.toml");
    let study = SHAPES_STUDY
        .replace(
            "source = \"shapes\"",
            &format!("source = \"folder\"\npath = \"{}\"", root.display()),
        )
        .replace("count = 100\n", "")
        .replace(
            "\"objective.loss\" = [\"non_saturating\", \"wgan_gp\"]",
            "\"objective.loss\" = [\"non_saturating\"]",
        );
    std::fs::write(&file, study).unwrap();
    let out = tmp.path().join("out");
    let o = run_study(&file, &out, &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let quality = std::fs::read_to_string(out.join("000-non_saturating-0/quality.csv")).unwrap();
    let rows: Vec<Vec<&str>> = quality
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 4, "{quality}");
    assert!(rows.iter().all(|r| r[2] == "2"), "two classes: {quality}");
    // The classifier learned the folders' classes: its held-out accuracy is in trials.csv.
    let o = ganlab_env(&["classifier", file.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("2 classes, held-out accuracy 100.00 %"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_small_image_study_runs_end_to_end_and_its_report_shows_the_grids() {
    use common::study::{ganlab_env, run_study, text};
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("shapes.toml");
    std::fs::write(&file, SHAPES_STUDY).unwrap();
    let out = tmp.path().join("out");
    let o = run_study(&file, &out, &["--jobs", "2"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    for trial in ["000-non_saturating-0", "001-wgan_gp-0"] {
        let dir = out.join(trial);
        let status = std::fs::read_to_string(dir.join("status.toml")).unwrap();
        assert!(status.contains("status = \"done\""), "{trial}: {status}");
        // Grids at steps 0, 4, 8 and the end; 8 x 8 images of 8 x 8 pixels enlarged 6 times.
        let grids = ganlab::report::grid::grid_files(&dir);
        assert_eq!(
            grids.iter().map(|g| g.0).collect::<Vec<_>>(),
            [0, 4, 8, 12],
            "{trial}"
        );
        let img = image::open(&grids[3].1).unwrap();
        assert_eq!((img.width(), img.height()), (8 * 49 + 1, 8 * 49 + 1));
        // The animation holds every grid.
        use image::AnimationDecoder;
        let gif = std::fs::File::open(dir.join("grids/trial.gif")).unwrap();
        let frames = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(gif))
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap();
        assert_eq!(frames.len(), 4);
        let eigen = std::fs::read_to_string(dir.join("eigen.csv")).unwrap();
        assert!(eigen.lines().any(|l| l.starts_with("6,game,dense,")));
        // Sample quality at every grid step, by the shapes' classifier (four classes).
        let quality = std::fs::read_to_string(dir.join("quality.csv")).unwrap();
        let lines: Vec<&str> = quality.lines().collect();
        assert_eq!(
            lines[0],
            "step,classes_covered,classes_total,confident_share,reverse_kl,frechet_distance"
        );
        let steps: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(steps, ["0", "4", "8", "12"], "{trial}");
        for l in &lines[1..] {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f[2], "4", "{l}");
            let covered: usize = f[1].parse().unwrap();
            let share: f64 = f[3].parse().unwrap();
            let frechet: f64 = f[5].parse().unwrap();
            assert!(covered <= 4 && (0.0..=100.0).contains(&share), "{l}");
            assert!(frechet.is_finite() && frechet >= 0.0, "{l}");
        }
    }
    let trials = std::fs::read_to_string(out.join("trials.csv")).unwrap();
    let header: Vec<&str> = trials.lines().next().unwrap().split(',').collect();
    for c in [
        "classes_covered",
        "confident_share",
        "class_reverse_kl",
        "frechet_distance",
        "classifier_accuracy",
        "frechet_floor",
    ] {
        assert!(header.contains(&c), "{c}: {header:?}");
    }
    // The classifier was trained once, kept in the cache folder, and says what it measured.
    let o = ganlab_env(&["classifier", file.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("4 classes, held-out accuracy"),
        "{}",
        text(&o)
    );
    let to = tmp.path().join("report");
    let o = ganlab_env(
        &[
            "report",
            out.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let page = std::fs::read_to_string(to.join("index.html")).unwrap();
    for trial in ["000-non_saturating-0", "001-wgan_gp-0"] {
        assert!(to.join("trials").join(trial).join("samples.png").is_file());
        assert!(to.join("trials").join(trial).join("samples.gif").is_file());
        assert!(to.join("trials").join(trial).join("real.png").is_file());
        assert!(page.contains(&format!("trials/{trial}/samples.png")));
        assert!(page.contains(&format!("trials/{trial}/samples.gif")));
        assert!(to.join("trials").join(trial).join("quality.png").is_file());
    }
    // One grid per compared value, in the comparison by objective.loss.
    assert!(
        page.contains("objective.loss = wgan_gp: 001-wgan_gp-0"),
        "{page}"
    );
}

#[test]
fn missing_or_corrupt_image_files_are_refused_by_name_before_anything_is_written() {
    use common::study::{run_study, text};
    let tmp = tempfile::tempdir().unwrap();
    let bad_idx = tmp.path().join("bad-images-idx3-ubyte");
    std::fs::write(
        &bad_idx,
        [0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0, 8, 1, 2, 3],
    )
    .unwrap();
    let folder = tmp.path().join("pictures");
    std::fs::create_dir(&folder).unwrap();
    image::RgbImage::new(10, 12)
        .save(folder.join("a.png"))
        .unwrap();
    std::fs::write(folder.join("b.jpg"), b"not a jpeg").unwrap();
    let wrong_size = tmp.path().join("small-images-idx3-ubyte");
    let mut bytes = vec![0u8, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 4];
    bytes.extend([0u8; 16]);
    std::fs::write(&wrong_size, bytes).unwrap();
    // A training split without its held-out images, which sample quality needs.
    let train_only = tmp.path().join("train-only");
    std::fs::create_dir(&train_only).unwrap();
    let mut images = vec![0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0, 8];
    images.extend([7u8; 128]);
    std::fs::write(train_only.join("train-images-idx3-ubyte"), images).unwrap();
    std::fs::write(
        train_only.join("train-labels-idx1-ubyte"),
        [0u8, 0, 8, 1, 0, 0, 0, 2, 0, 1],
    )
    .unwrap();
    for (data, says) in [
        (
            format!("source = \"mnist\"\npath = \"{}\"", train_only.display()),
            format!(
                "{}: not found (nor {}.gz); the IDX files of MNIST or Fashion-MNIST are \
                 train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and \
                 t10k-labels-idx1-ubyte, plain or .gz (the held-out images measure sample \
                 quality; set record.image_quality = false to train without them)",
                train_only.join("t10k-images-idx3-ubyte").display(),
                train_only.join("t10k-images-idx3-ubyte").display()
            ),
        ),
        (
            format!("source = \"idx\"\npath = \"{}\"", bad_idx.display()),
            format!("{}: not an IDX file of bytes: its header says [2, 8, 8] = 128 bytes of data, the file holds 3", bad_idx.display()),
        ),
        (
            format!("source = \"idx\"\npath = \"{}\"", wrong_size.display()),
            format!("{}: its images are 4 x 4 with 1 channel(s); the experiment asks for 8 x 8", wrong_size.display()),
        ),
        (
            format!("source = \"folder\"\npath = \"{}\"", folder.display()),
            format!("{}: not a readable image", folder.join("b.jpg").display()),
        ),
        (
            format!("source = \"mnist\"\npath = \"{}\"", tmp.path().display()),
            format!("{}: not found", tmp.path().join("train-images-idx3-ubyte").display()),
        ),
    ] {
        let file = tmp.path().join("e.toml");
        std::fs::write(
            &file,
            format!("[study]\nname = \"e\"\n[base]\nsteps = 2\n[base.data]\nkind = \"images\"\nsize = 8\n{data}\n"),
        )
        .unwrap();
        let out = tmp.path().join("out");
        let o = run_study(&file, &out, &[], &[]);
        assert!(!o.status.success());
        let t = text(&o);
        assert!(t.contains(&says), "wanted {says:?} in {t}");
        assert!(t.contains("e.toml") && t.contains("data.path"), "{t}");
        assert!(!out.exists(), "nothing is written: {t}");
    }
}

#[test]
fn the_ebgan_discriminator_outputs_its_reconstruction_error_and_its_code() {
    use ganlab::nets::ebgan::Ebgan;
    let image = ImageShape {
        channels: 1,
        size: 16,
    };
    let half = |role| {
        Net::Dcgan(Box::new(Dcgan {
            role,
            image,
            width: 2,
            norm: Norm::Layer,
        }))
    };
    let e = Ebgan {
        encoder: half(Role::Discriminator { outputs: 3 }),
        decoder: half(Role::Generator { z_dim: 3 }),
    };
    let net = Net::Ebgan(Box::new(e.clone()));
    let mut rng = ganlab::rng::stream(2, ganlab::rng::Stream::Eval);
    let p = net.init(&mut rng);
    let n = 4;
    let x = uniform(n * 256, 3);
    let out = host(net.forward(&tensors(&net, &p), matrix::<B64>(x.clone(), n, 256, &CPU)));
    assert_eq!(out.len(), n * 4);
    let ne = e.encoder.param_specs().len();
    let code = e.encoder.forward(
        &tensors(&e.encoder, &p[..ne]),
        matrix::<B64>(x.clone(), n, 256, &CPU),
    );
    let recon = host(
        e.decoder
            .forward(&tensors(&e.decoder, &p[ne..]), code.clone()),
    );
    let code = host(code);
    for i in 0..n {
        let mse: f64 = (0..256)
            .map(|k| (recon[i * 256 + k] - x[i * 256 + k]).powi(2))
            .sum::<f64>()
            / 256.0;
        assert!(
            (out[i * 4] - mse).abs() < 1e-12,
            "energy {} vs {mse}",
            out[i * 4]
        );
        assert_eq!(&out[i * 4 + 1..i * 4 + 4], &code[i * 3..i * 3 + 3]);
    }
}

#[test]
fn ebgan_studies_run_on_points_and_on_images() {
    use common::study::{run_study, text};
    let tmp = tempfile::tempdir().unwrap();
    let points = "[study]\nname = \"ebgan-ring\"\n[base]\nsteps = 20\n\
                  [base.objective]\nloss = \"ebgan\"\nmargin = 0.5\n\
                  [base.discriminator]\nkind = \"ebgan\"\ncode_dim = 4\nwidth = 16\n\
                  [base.generator]\nwidth = 16\n[base.record]\nmodes_every = 10\n\
                  eval_samples = 200\n[base.probe]\nevery = 10\nbatch = 32\n";
    let images = SHAPES_STUDY
        .replace("name = \"shapes\"", "name = \"ebgan-shapes\"")
        .replace(
            "norm = \"layer\"",
            "norm = \"layer\"\n[base.objective]\nloss = \"ebgan\"",
        )
        .replace(
            "[base.discriminator]\nkind = \"dcgan\"",
            "[base.discriminator]\nkind = \"ebgan\"\ncode_dim = 4",
        )
        .replace(
            "\"objective.loss\" = [\"non_saturating\", \"wgan_gp\"]",
            "\"objective.pt_weight\" = [0.0, 0.1]",
        );
    for (name, text_of) in [("ring", points.to_string()), ("shapes", images)] {
        let file = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&file, &text_of).unwrap();
        let out = tmp.path().join(name);
        let o = run_study(&file, &out, &["--jobs", "2"], &[]);
        assert!(o.status.success(), "{name}: {}", text(&o));
        let trials = std::fs::read_to_string(out.join("trials.csv")).unwrap();
        assert!(!trials.contains("failed"), "{name}: {trials}");
        assert!(trials.contains("done"), "{name}: {trials}");
    }
}

#[test]
fn a_dense_probe_of_a_dcgan_game_too_large_for_memory_is_refused_with_its_estimate() {
    use common::study::{ganlab_env, text};
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("big.toml");
    // 28 x 28 DCGAN players of width 32 with z dim 100: 386 786 parameters, a dense Jacobian
    // of 3.6e12 bytes (three copies in f64): more than any machine the tests run on.
    let body = "[study]\nname = \"big\"\n[base]\nsteps = 2\n\
                data = { kind = \"images\", source = \"shapes\", size = 28, count = 20 }\n\
                latent = { dim = 100 }\n\
                generator = { kind = \"dcgan\", width = 32 }\n\
                discriminator = { kind = \"dcgan\", width = 32 }\n\
                probe = { every = 1, max_dense = 1000000 }\n";
    std::fs::write(&file, body).unwrap();
    let o = ganlab_env(&["validate", file.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    let t = text(&o);
    for says in [
        "big.toml:9: key `base.probe.max_dense`",
        "dense Jacobian of this game's 386786 parameters: about 3343.90 GiB",
        "set probe.max_dense below 386786 to probe it by Arnoldi",
    ] {
        assert!(t.contains(says), "wanted {says:?} in {t}");
    }
    // Below the game's size the same file is valid: Arnoldi and Lanczos probe it.
    std::fs::write(
        &file,
        body.replace("max_dense = 1000000", "max_dense = 3000"),
    )
    .unwrap();
    let o = ganlab_env(&["validate", file.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
}

/// On the default CPU backend (burn-flex, f32) the DCGAN's convolutions run as row gathers and
/// matrix products (`nets::conv`); on NdArray as burn's `conv2d` and `conv_transpose2d`. The
/// same trials on both must give the same losses, scores and gradient norms to f32 rounding,
/// before and after an update (batch norm in the generator, layer norm in the critic).
#[test]
fn dcgan_steps_with_convolutions_as_products_match_burns_convolutions() {
    use common::study::{run_study, text};
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("conv.toml");
    std::fs::write(
        &file,
        r#"
[study]
name = "conv"

[base]
steps = 2
data = { kind = "images", source = "shapes", size = 16, count = 100 }
latent = { dim = 4 }
generator = { kind = "dcgan", width = 2 }
discriminator = { kind = "dcgan", width = 2, norm = "layer" }
train = { batch = 8 }

[sweep]
"objective.loss" = ["non_saturating", "wgan_gp"]
backend = ["cpu", "ndarray"]
"#,
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = run_study(&file, &out, &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let table = |trial: &str| -> (Vec<String>, Vec<Vec<f64>>) {
        let mut r = csv::Reader::from_path(out.join(trial).join("metrics.csv")).unwrap();
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        let rows = r
            .records()
            .map(|rec| rec.unwrap().iter().map(|v| v.parse().unwrap()).collect())
            .collect();
        (header, rows)
    };
    for (flex, ndarray) in [
        ("000-non_saturating-cpu", "001-non_saturating-ndarray"),
        ("002-wgan_gp-cpu", "003-wgan_gp-ndarray"),
    ] {
        let (header, a) = table(flex);
        let (_, b) = table(ndarray);
        assert_eq!((a.len(), b.len()), (2, 2), "{flex}");
        // The critic's second convolution is normalised: its scale has a gradient.
        assert!(
            header.iter().any(|h| h == "grad_norm_d/down1.scale"),
            "{header:?}"
        );
        for (row_a, row_b) in a.iter().zip(&b) {
            for ((name, x), y) in header.iter().zip(row_a).zip(row_b) {
                if name == "wall_time_s" {
                    continue;
                }
                let scale = x.abs().max(y.abs()).max(1e-6);
                assert!((x - y).abs() <= 1e-4 * scale, "{flex} {name}: {x} vs {y}");
            }
        }
    }
}
