//! ganlab never loses a user's file or a result: one run per study folder at a time, reports
//! and studies only where ganlab made them, and `--jobs` bounds the trials open at once.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::study::{ganlab_env, run_study, text};

const STUDY: &str = r#"
[study]
name = "safety"

[base]
steps = STEPS
data = { kind = "ring", modes = 4, radius = 1.0, std = 0.05 }
generator = { kind = "mlp", depth = 1, width = 6 }
discriminator = { kind = "mlp", depth = 1, width = 6 }
train = { batch = 16 }
record = { every = 1, modes_every = 100, eval_samples = 32 }

[sweep]
seed = [0, 1, 2, 3, 4, 5]
"#;

fn study(dir: &Path, steps: u64) -> std::path::PathBuf {
    let file = dir.join("safety.toml");
    fs::write(&file, STUDY.replace("STEPS", &steps.to_string())).unwrap();
    file
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_run_on_a_study_folder_is_refused_and_a_dead_runs_lock_is_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 20_000);
    let out = tmp.path().join("out");
    let mut first = Command::new(env!("CARGO_BIN_EXE_ganlab"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .env_remove("GANLAB_FAULT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id();
    wait_for("the first run's trial", || {
        out.join("000-0/metrics.csv.partial").exists()
    });
    let before = fs::metadata(out.join("000-0/config.toml"))
        .unwrap()
        .modified()
        .unwrap();

    let o = run_study(&file, &out, &[], &[]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains(&format!("pid = {pid}")),
        "the holder is named: {msg}"
    );
    assert!(
        msg.contains("another ganlab run is writing this study"),
        "{msg}"
    );
    // The refused run touched nothing of the running one.
    let after = fs::metadata(out.join("000-0/config.toml"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    assert!(out.join("000-0/metrics.csv.partial").exists());

    // The first run dies; its lock goes with it, and the next run takes it over and says so
    // at once (this one is stopped after its first step).
    first.kill().unwrap();
    first.wait().unwrap();
    let o = run_study(&file, &out, &[], &[("GANLAB_FAULT", "step:1")]);
    let msg = text(&o);
    assert!(msg.contains("took over the study lock"), "{msg}");
    assert!(msg.contains(&format!("pid = {pid}")), "{msg}");
}

#[test]
fn jobs_bounds_the_trials_open_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 60);
    for jobs in [1usize, 2] {
        let out = tmp.path().join(format!("jobs-{jobs}"));
        let o = run_study(&file, &out, &["--jobs", &jobs.to_string()], &[]);
        assert!(o.status.success(), "{}", text(&o));
        // Each trial's run, from its status: [start, end] in milliseconds.
        let mut spans: Vec<(String, String)> = (0..6)
            .map(|seed| {
                let s: toml::Table = toml::from_str(
                    &fs::read_to_string(out.join(format!("00{seed}-{seed}/status.toml"))).unwrap(),
                )
                .unwrap();
                (
                    s["started_at"].as_str().unwrap().to_string(),
                    s["ended_at"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        spans.sort();
        // RFC 3339 times of one format sort as text; count the runs open at each start.
        for (i, (start, _)) in spans.iter().enumerate() {
            let open = spans[..=i].iter().filter(|(_, end)| end > start).count();
            assert!(
                open <= jobs,
                "--jobs {jobs}: {open} trials open at {start}: {spans:?}"
            );
        }
    }
}

#[test]
fn run_refuses_a_folder_of_the_users_own_files() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 5);
    let out = tmp.path().join("project");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("README.md"), "my project\n").unwrap();
    fs::write(out.join("trials.csv"), "my,own\n1,2\n").unwrap();
    let o = run_study(&file, &out, &[], &[]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(msg.contains("not a ganlab study"), "{msg}");
    assert_eq!(
        fs::read_to_string(out.join("README.md")).unwrap(),
        "my project\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("trials.csv")).unwrap(),
        "my,own\n1,2\n"
    );
    assert_eq!(fs::read_dir(&out).unwrap().count(), 2, "nothing was added");
    // An empty folder and a study of ganlab's own are fine.
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    assert!(run_study(&file, &empty, &[], &[]).status.success());
    assert!(run_study(&file, &empty, &[], &[]).status.success());
}

#[test]
fn report_never_replaces_a_folder_it_did_not_make() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 5);
    let out = tmp.path().join("out");
    assert!(run_study(&file, &out, &[], &[]).status.success());
    let site = tmp.path().join("site");
    fs::create_dir_all(site.join("blog")).unwrap();
    fs::write(site.join("index.html"), "<p>mine</p>").unwrap();
    fs::write(site.join("blog/post.html"), "<p>post</p>").unwrap();
    fs::write(site.join("notes.txt"), "notes").unwrap();
    let o = ganlab_env(
        &[
            "report",
            out.to_str().unwrap(),
            "--to",
            site.to_str().unwrap(),
        ],
        &[],
    );
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(msg.contains("is not a ganlab report"), "{msg}");
    assert_eq!(
        fs::read_to_string(site.join("blog/post.html")).unwrap(),
        "<p>post</p>"
    );
    assert_eq!(fs::read_to_string(site.join("notes.txt")).unwrap(), "notes");
    assert_eq!(
        fs::read_to_string(site.join("index.html")).unwrap(),
        "<p>mine</p>"
    );
    // Its own report folder it replaces, again and again.
    let own = tmp.path().join("own");
    for _ in 0..2 {
        let o = ganlab_env(
            &[
                "report",
                out.to_str().unwrap(),
                "--to",
                own.to_str().unwrap(),
            ],
            &[],
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    assert!(own.join(".ganlab-report").is_file());
}

#[test]
fn probe_refuses_a_non_finite_checkpoint_an_empty_path_and_a_bad_config() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("probed.toml");
    fs::write(
        &file,
        "[study]\nname = \"p\"\n[base]\nsteps = 6\ndata = { kind = \"dirac\" }\n\
         generator = { kind = \"dirac\" }\ndiscriminator = { kind = \"linear\" }\n\
         train = { batch = 4 }\nrecord = { checkpoint_every = 3 }\nprobe = { every = 3, batch = 4 }\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    assert!(run_study(&file, &out, &[], &[]).status.success());
    let trial = out.join("000");
    let t = trial.to_str().unwrap();

    let nan = trial.join("checkpoints/step-000000003.npy");
    ganlab::store::npy::write(&nan, &[f64::NAN, 0.5], &[2]).unwrap();
    let o = ganlab_env(&["probe", t, "--step", "3"], &[]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("step-000000003.npy") && msg.contains("not finite"),
        "{msg}"
    );

    let o = ganlab_env(&["probe", t, "--path", "6", "6"], &[]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(msg.contains("no direction"), "{msg}");
    assert!(!trial.join("probes/path-6-6").exists());

    let config = trial.join("config.toml");
    let text0 = fs::read_to_string(&config).unwrap();
    let at = text0.find("[train]").unwrap();
    let edited = format!(
        "{}{}",
        &text0[..at],
        text0[at..].replacen("batch = 4", "batch = 0", 1)
    );
    assert_ne!(edited, text0);
    fs::write(&config, edited).unwrap();
    let o = ganlab_env(&["probe", t, "--step", "6"], &[]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("config.toml") && msg.contains("train.batch"),
        "{msg}"
    );
    assert!(!msg.contains("panicked"), "{msg}");
}
