//! Batched trials end to end (`[study] batch_trials = true`): the same files whatever
//! `--jobs` or the grouping, the numbers of unbatched trials to rounding, a diverging member
//! leaving its group while the others go on, and an exact resume after a kill mid-group.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::study::{assert_same_files, run_study, study_files, text};

/// Four seeds and two learning rates of one game, and an arm whose rate makes it diverge:
/// one group key for all nine trials.
fn study(batch: bool) -> String {
    format!(
        r#"
[study]
name = "batched"
batch_trials = {batch}

[base]
steps = 40
data = {{ kind = "ring", modes = 4, radius = 1.0, std = 0.05 }}
generator = {{ kind = "mlp", depth = 1, width = 8, activation = "relu" }}
discriminator = {{ kind = "mlp", depth = 1, width = 8, activation = "relu" }}
objective = {{ loss = "wgan_gp", gp_weight = 1.0 }}
train = {{ batch = 16, n_critic = 2, diverge_above = 1e4, opt_g = {{ kind = "adam", lr = 1e-3 }}, opt_d = {{ kind = "adam", lr = 1e-3 }} }}
record = {{ every = 1, modes_every = 20, eval_samples = 64, checkpoint_every = 10, checkpoint_minutes = 0.0 }}

[sweep]
seed = [0, 1, 2, 3]
variant = [
  {{ name = "slow", "train.opt_d.lr" = 1e-3, "objective.gp_weight" = 1.0 }},
  {{ name = "fast", "train.opt_d.lr" = 4e-3, "objective.gp_weight" = 5.0 }},
]
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let file = dir.join(name);
    fs::write(&file, text).unwrap();
    file
}

fn status_of(out: &Path, trial: &str) -> String {
    fs::read_to_string(out.join(trial).join("status.toml")).unwrap()
}

fn trial_names(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(out)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("status.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn batched_trials_give_the_same_files_whatever_jobs_or_grouping() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "batched.toml", &study(true));
    let one = tmp.path().join("jobs1");
    let o = run_study(&file, &one, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let names = trial_names(&one);
    assert_eq!(names.len(), 8, "{names:?}");
    for n in &names {
        assert!(status_of(&one, n).contains("status = \"done\""), "{n}");
    }
    let want = study_files(&one);
    // Two workers: the group is split in two.
    let two = tmp.path().join("jobs2");
    let o = run_study(&file, &two, &["--jobs", "2"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_same_files(&want, &study_files(&two));
    // Other groups: three runs of some trials each.
    let parts = tmp.path().join("parts");
    for list in ["0,5", "1-3", "4,6,7"] {
        let o = run_study(&file, &parts, &["--jobs", "1", "--trial", list], &[]);
        assert!(o.status.success(), "{list}: {}", text(&o));
    }
    assert_same_files(&want, &study_files(&parts));
}

/// The numbers of `metrics.csv` as rows of floats, header dropped.
fn metrics(out: &Path, trial: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = fs::read_to_string(out.join(trial).join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect())
        .collect();
    (header, rows)
}

#[test]
fn batched_trials_equal_unbatched_ones_to_rounding() {
    let tmp = tempfile::tempdir().unwrap();
    let batched = write(tmp.path(), "b.toml", &study(true));
    let single = write(tmp.path(), "s.toml", &study(false));
    let (b_out, s_out) = (tmp.path().join("b"), tmp.path().join("s"));
    for (f, o) in [(&batched, &b_out), (&single, &s_out)] {
        let r = run_study(f, o, &["--jobs", "2"], &[]);
        assert!(r.status.success(), "{}", text(&r));
    }
    let mut worst: f64 = 0.0;
    for name in trial_names(&s_out) {
        let (header, want) = metrics(&s_out, &name);
        let (_, got) = metrics(&b_out, &name);
        assert_eq!(want.len(), got.len(), "{name}");
        for (w, g) in want.iter().zip(&got) {
            for ((col, a), b) in header.iter().zip(w).zip(g) {
                if col == "wall_time_s" {
                    continue;
                }
                let d = (a - b).abs() / (1.0 + a.abs());
                worst = worst.max(d);
                // f32 training over 40 steps: rounding, not another trajectory.
                assert!(d < 1e-3, "{name} {col}: {a} vs {b}");
            }
        }
    }
    eprintln!("largest relative difference, batched vs unbatched: {worst:.2e}");
}

#[test]
fn a_diverging_trial_leaves_its_group_and_the_others_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let text_ = study(true).replace(
        "{ name = \"fast\", \"train.opt_d.lr\" = 4e-3",
        "{ name = \"fast\", \"train.opt_d.lr\" = 1e4",
    );
    let file = write(tmp.path(), "d.toml", &text_);
    let out = tmp.path().join("out");
    let o = run_study(&file, &out, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    for name in trial_names(&out) {
        let status = status_of(&out, &name);
        let (_, rows) = metrics(&out, &name);
        if name.contains("fast") {
            assert!(status.contains("status = \"diverged\""), "{name}: {status}");
            assert!(rows.len() < 40, "{name}: {} rows", rows.len());
        } else {
            assert!(status.contains("status = \"done\""), "{name}: {status}");
            assert_eq!(rows.len(), 40, "{name}");
        }
    }
    // The slow trials are those of a study without the diverging arm.
    let slow_only = write(
        tmp.path(),
        "slow.toml",
        &study(true).replace(
            "  { name = \"fast\", \"train.opt_d.lr\" = 4e-3, \"objective.gp_weight\" = 5.0 },\n",
            "",
        ),
    );
    let alone = tmp.path().join("alone");
    let o = run_study(&slow_only, &alone, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    // Trial folders are numbered in study order: match them by seed and arm.
    let arm = |name: &str| {
        name.split_once('-')
            .map(|(_, rest)| rest.to_string())
            .unwrap()
    };
    let mut compared = 0;
    for name in trial_names(&alone) {
        let twin = trial_names(&out)
            .into_iter()
            .find(|n| arm(n) == arm(&name))
            .unwrap();
        let table = |dir: &Path, n: &str| {
            String::from_utf8(common::study::csv_without_time(
                &fs::read(dir.join(n).join("metrics.csv")).unwrap(),
            ))
            .unwrap()
        };
        assert!(
            table(&alone, &name) == table(&out, &twin),
            "{name} vs {twin}"
        );
        compared += 1;
    }
    assert_eq!(compared, 4);
}

#[test]
fn a_batched_study_killed_mid_group_resumes_to_the_same_files() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "batched.toml", &study(true));
    let want_dir = tmp.path().join("want");
    let o = run_study(&file, &want_dir, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let want = study_files(&want_dir);
    // The 8 members count one `step` point each per group step: step 100 falls in group step
    // 12, after the checkpoint at 10.
    for fault in ["step:100", "checkpoint:12"] {
        let out = tmp.path().join(fault.replace(':', "-"));
        let o = run_study(&file, &out, &["--jobs", "1"], &[("GANLAB_FAULT", fault)]);
        assert!(
            !o.status.success(),
            "{fault}: the run was not killed: {}",
            text(&o)
        );
        let o = run_study(&file, &out, &["--jobs", "1"], &[]);
        assert!(o.status.success(), "{fault}: {}", text(&o));
        assert_same_files(&want, &study_files(&out));
    }
}

#[test]
fn validate_says_which_trials_run_alone_and_why() {
    let tmp = tempfile::tempdir().unwrap();
    let text_ = study(true).replace(
        "[sweep]\n",
        "[sweep]\n\"train.update\" = [\"simultaneous\", \"extragradient\"]\n",
    );
    let file = write(tmp.path(), "v.toml", &text_);
    let o = common::study::ganlab_env(&["validate", file.to_str().unwrap()], &[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    // 16 trials: the 8 simultaneous ones in one group, the 8 extragradient ones alone.
    assert!(
        out.contains("batch_trials: 1 group(s) of trials trained as one model, 8 trial(s) alone"),
        "{out}"
    );
    assert_eq!(
        out.matches("runs alone: train.update = \"extragradient\"")
            .count(),
        8,
        "{out}"
    );
}
