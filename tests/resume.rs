//! Exact resume: a study killed with SIGKILL at any moment (mid-trial, mid-checkpoint,
//! mid-table) and run again ends with the tables of an uninterrupted run, wall time aside;
//! damaged checkpoints are skipped with a note; a changed experiment file is refused.
//!
//! The kills at a chosen moment come from `GANLAB_FAULT` (see `src/fault.rs`); one more kill
//! comes from outside, at a time.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::study::{assert_same_files, run_study, study_files, text};

/// Two trials (simultaneous and alternating, with probes, mode coverage and WGAN-GP's penalty
/// stream), checkpoints every 40 steps; the state is saved at most every 40 steps here, so a
/// kill loses up to 39 steps of work.
const STUDY: &str = r#"
[study]
name = "resume"

[base]
steps = 150
data = { kind = "ring", modes = 4, radius = 1.0, std = 0.05 }
generator = { kind = "mlp", depth = 1, width = 6, activation = "tanh" }
discriminator = { kind = "mlp", depth = 1, width = 6, activation = "tanh" }
objective = { loss = "wgan_gp", gp_weight = 0.5 }
train = { batch = 16, n_critic = 2, opt_g = { kind = "adam", lr = 1e-3 }, opt_d = { kind = "adam", lr = 1e-3 } }
record = { every = 1, modes_every = 30, eval_samples = 64, checkpoint_every = 40, checkpoint_minutes = 0.0 }
probe = { every = 50, batch = 16 }

[sweep]
"train.update" = ["simultaneous", "alternating"]
"#;

fn setup(dir: &Path) -> PathBuf {
    let file = dir.join("resume.toml");
    fs::write(&file, STUDY).unwrap();
    file
}

/// The files of an uninterrupted run of the study.
fn reference(dir: &Path, file: &Path) -> BTreeMap<String, Vec<u8>> {
    let out = dir.join("reference");
    let o = run_study(file, &out, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    study_files(&out)
}

/// `ganlab run FILE --out OUT --quiet --jobs 1` started in the background, its output piped.
fn spawn_run(file: &Path, out: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ganlab"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--quiet", "--jobs", "1"])
        .env_remove("GANLAB_FAULT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn killed(o: &std::process::Output) -> bool {
    o.status.signal() == Some(9)
}

fn status_of(out: &Path, trial: &str) -> String {
    fs::read_to_string(out.join(trial).join("status.toml")).unwrap()
}

#[test]
fn a_study_killed_at_any_moment_resumes_to_the_same_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let file = setup(tmp.path());
    let want = reference(tmp.path(), &file);
    // Mid-trial (after step 57's updates, and in the second trial), mid-table (a half row of
    // metrics.csv on disk), mid-checkpoint (the first and a later state file half written).
    for fault in [
        "step:57",
        "step:230",
        "table:101",
        "checkpoint:1",
        "checkpoint:5",
    ] {
        let out = tmp.path().join(fault.replace(':', "-"));
        let o = run_study(&file, &out, &["--jobs", "1"], &[("GANLAB_FAULT", fault)]);
        assert!(killed(&o), "{fault}: the run was not killed: {}", text(&o));
        let o = run_study(&file, &out, &["--jobs", "1"], &[]);
        assert!(o.status.success(), "{fault}: {}", text(&o));
        assert_same_files(&want, &study_files(&out));
        // Nothing half-written is left behind.
        for trial in ["000-simultaneous", "001-alternating"] {
            let names: Vec<String> = fs::read_dir(out.join(trial))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(
                names
                    .iter()
                    .all(|n| !n.ends_with(".partial") && !n.ends_with("~")),
                "{fault}: {names:?}"
            );
        }
    }
    // After step 57 of the first trial: it resumed from its checkpoint at step 40.
    let out = tmp.path().join("step-57");
    assert!(status_of(&out, "000-simultaneous").contains("resumed_from = 40"));
}

/// Waits (polling every millisecond, up to a minute) until `trial` has a state file on disk or
/// the run has ended; true when a state file appeared while the run was still going.
fn wait_for_checkpoint(child: &mut std::process::Child, trial: &Path) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let has_state = fs::read_dir(trial.join("checkpoints")).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "bin"))
        });
        if has_state {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    false
}

#[test]
fn a_kill_from_outside_at_any_time_resumes_to_the_same_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let file = setup(tmp.path());
    let started = std::time::Instant::now();
    let want = reference(tmp.path(), &file);
    let whole = started.elapsed();

    // Kills at fractions of an uninterrupted run's time: they may fall before the first
    // checkpoint, mid-trial, between trials or after the end (the machine's speed varies);
    // wherever they fall, a rerun ends with the same tables.
    for fraction in [0.3, 0.55, 0.8] {
        let out = tmp.path().join(format!("kill-{fraction}"));
        let mut child = spawn_run(&file, &out);
        std::thread::sleep(whole.mul_f64(fraction));
        let _ = child.kill(); // SIGKILL; the run may also have ended already
        child.wait().unwrap();
        let o = run_study(&file, &out, &["--jobs", "1"], &[]);
        assert!(
            o.status.success(),
            "after {fraction} of a run: {}",
            text(&o)
        );
        assert_same_files(&want, &study_files(&out));
    }

    // Kills as soon as a trial's first state file is seen: the rerun resumes that trial from
    // it (in the first trial, and in the second after the first has ended).
    let mut resumed = 0;
    let mut landed = 0;
    for trial in ["000-simultaneous", "001-alternating"] {
        let out = tmp.path().join(format!("kill-after-checkpoint-{trial}"));
        let mut child = spawn_run(&file, &out);
        let mid_trial = wait_for_checkpoint(&mut child, &out.join(trial));
        let _ = child.kill();
        child.wait().unwrap();
        let o = run_study(&file, &out, &["--jobs", "1"], &[]);
        assert!(o.status.success(), "killed in {trial}: {}", text(&o));
        if mid_trial {
            landed += 1;
            resumed += text(&o).matches("resumed: ").count();
        }
        assert_same_files(&want, &study_files(&out));
    }
    // A trial of 150 steps runs on for many milliseconds after its first checkpoint (step
    // 40), so the kill lands mid-trial unless the machine stalls the test for that long.
    assert!(
        landed > 0,
        "no kill fell after a checkpoint and before the end"
    );
    assert!(
        resumed >= landed,
        "{landed} kills fell mid-trial, but only {resumed} trials said they resumed"
    );
}

fn state_files(trial: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(trial.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_damaged_checkpoint_is_skipped_and_the_trial_still_ends_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let file = setup(tmp.path());
    let want = reference(tmp.path(), &file);

    // Killed after step 125: checkpoints at 80 and 120 are kept. Damage the newest: the trial
    // resumes from the one before, and says so.
    let out = tmp.path().join("damaged");
    let o = run_study(
        &file,
        &out,
        &["--jobs", "1"],
        &[("GANLAB_FAULT", "step:125")],
    );
    assert!(killed(&o), "{}", text(&o));
    let trial = out.join("000-simultaneous");
    let states = state_files(&trial);
    assert_eq!(states.len(), 2, "{states:?}");
    let newest = states.last().unwrap();
    let mut bytes = fs::read(newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    fs::write(newest, &bytes).unwrap();
    let o = run_study(&file, &out, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("skipped a damaged checkpoint"),
        "{}",
        text(&o)
    );
    let status = status_of(&out, "000-simultaneous");
    assert!(status.contains("resumed_from = 80"), "{status}");
    assert!(status.contains("CRC"), "{status}");
    assert_same_files(&want, &study_files(&out));

    // Every checkpoint truncated: the trial starts again from scratch, and says so.
    let out = tmp.path().join("truncated");
    let o = run_study(
        &file,
        &out,
        &["--jobs", "1"],
        &[("GANLAB_FAULT", "step:100")],
    );
    assert!(killed(&o), "{}", text(&o));
    for s in state_files(&out.join("000-simultaneous")) {
        let len = fs::metadata(&s).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&s)
            .unwrap()
            .set_len(len / 3)
            .unwrap();
    }
    let o = run_study(&file, &out, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("the trial starts again"), "{}", text(&o));
    assert!(!status_of(&out, "000-simultaneous").contains("resumed_from"));
    assert_same_files(&want, &study_files(&out));
}

#[test]
fn a_changed_experiment_file_is_refused_unless_restarted() {
    let tmp = tempfile::tempdir().unwrap();
    let file = setup(tmp.path());
    let out = tmp.path().join("changed");
    let o = run_study(
        &file,
        &out,
        &["--jobs", "1"],
        &[("GANLAB_FAULT", "step:60")],
    );
    assert!(killed(&o), "{}", text(&o));
    let before = study_files(&out);
    fs::write(
        &file,
        STUDY.replace("lr = 1e-3 }, opt_d", "lr = 2e-3 }, opt_d"),
    )
    .unwrap();
    let o = run_study(&file, &out, &["--jobs", "1"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let msg = text(&o);
    assert!(msg.contains("train.opt_g.lr"), "{msg}");
    assert!(msg.contains("--restart"), "{msg}");
    assert!(!msg.contains("panicked"), "{msg}");
    assert_eq!(before, study_files(&out), "a refused run changed the study");

    // With --restart the changed trials start afresh and give the new file's numbers.
    let o = run_study(&file, &out, &["--jobs", "1", "--restart"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let fresh = tmp.path().join("fresh");
    let o = run_study(&file, &fresh, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_same_files(&study_files(&fresh), &study_files(&out));
}

#[test]
fn status_files_carry_provenance_and_trials_csv_comes_from_them() {
    let tmp = tempfile::tempdir().unwrap();
    let file = setup(tmp.path());
    let out = tmp.path().join("provenance");
    let o = run_study(&file, &out, &["--jobs", "2"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let s: toml::Table = toml::from_str(&status_of(&out, "001-alternating")).unwrap();
    for key in [
        "ganlab_version",
        "burn_version",
        "backend",
        "device",
        "host",
        "started_at",
        "ended_at",
        "seed",
        "streams",
    ] {
        assert!(s.contains_key(key), "status.toml lacks {key}: {s:?}");
    }
    let streams = s["streams"].as_table().unwrap();
    assert_eq!(streams["latent"].as_str(), Some("ChaCha8 seed 0 stream 4"));
    assert!(s["started_at"].as_str().unwrap().ends_with('Z'));

    // trials.csv is rebuilt from the status files: a figure another process (a Slurm task,
    // say) recorded in a finished trial's status shows up in the next rebuild.
    let trial = out.join("000-simultaneous");
    let mut edited: toml::Table = toml::from_str(&status_of(&out, "000-simultaneous")).unwrap();
    edited.insert("wall_time_s".into(), toml::Value::Float(12345.5));
    fs::write(trial.join("status.toml"), toml::to_string(&edited).unwrap()).unwrap();
    fs::remove_dir_all(out.join("001-alternating")).unwrap();
    let o = run_study(&file, &out, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1 trial(s) ran"), "{}", text(&o));
    let csv = fs::read_to_string(out.join("trials.csv")).unwrap();
    assert!(csv.contains("12345.5"), "{csv}");
    assert_eq!(csv.matches(",done,").count(), 2, "{csv}");
}

#[test]
fn sigint_sigterm_and_sigusr1_stop_the_trials_with_their_state_and_a_rerun_resumes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("long.toml");
    fs::write(
        &file,
        STUDY
            .replace("steps = 150", "steps = 1500")
            .replace("checkpoint_every = 40", "checkpoint_every = 0")
            .replace("probe = { every = 50", "probe = { every = 1000"),
    )
    .unwrap();
    let want = reference(tmp.path(), &file);
    // 128 + the signal's number: a Slurm job script tells USR1 (time limit near: requeue)
    // from TERM (cancelled).
    for (signal, code) in [("INT", 130), ("TERM", 143), ("USR1", 138)] {
        let out = tmp.path().join(signal);
        let child = spawn_run(&file, &out);
        // Some way into the first trial.
        let metrics = out.join("000-simultaneous/metrics.csv.partial");
        let start = std::time::Instant::now();
        while fs::metadata(&metrics).map_or(0, |m| m.len()) < 20_000 {
            assert!(start.elapsed().as_secs() < 120, "the run made no progress");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let kill = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let o = child.wait_with_output().unwrap();
        let msg = text(&o);
        assert_eq!(o.status.code(), Some(code), "SIG{signal}: {msg}");
        assert!(
            msg.contains("interrupted: 1 trial(s) saved their state and 1 did not start"),
            "{msg}"
        );
        let status = status_of(&out, "000-simultaneous");
        assert!(status.contains("status = \"interrupted\""), "{status}");
        assert!(metrics.exists(), "the tables stay partial for the resume");
        let o = run_study(&file, &out, &["--jobs", "1"], &[]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("resumed: 000-simultaneous"),
            "{}",
            text(&o)
        );
        assert_same_files(&want, &study_files(&out));
    }
}

#[test]
fn a_new_checkpoint_cadence_is_not_a_changed_trial() {
    let tmp = tempfile::tempdir().unwrap();
    let file = setup(tmp.path());
    let out = tmp.path().join("cadence");
    let o = run_study(
        &file,
        &out,
        &["--jobs", "1"],
        &[("GANLAB_FAULT", "step:200")],
    );
    assert!(killed(&o), "{}", text(&o));
    // How often checkpoints are saved changes no number: the study goes on without --restart.
    fs::write(
        &file,
        STUDY.replace(
            "checkpoint_every = 40, checkpoint_minutes = 0.0",
            "checkpoint_every = 40, checkpoint_minutes = 5.0",
        ),
    )
    .unwrap();
    let o = run_study(&file, &out, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1 already finished"), "{}", text(&o));
}

#[test]
fn a_trial_with_annealed_instance_noise_resumes_to_the_same_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("noise.toml");
    fs::write(
        &file,
        STUDY.replace(
            "objective = { loss = \"wgan_gp\", gp_weight = 0.5 }",
            "objective = { loss = \"wgan_gp\", gp_weight = 0.5, instance_noise = 0.3, noise_anneal = 100 }",
        ),
    )
    .unwrap();
    let want = reference(tmp.path(), &file);
    let out = tmp.path().join("killed");
    let o = run_study(
        &file,
        &out,
        &["--jobs", "1"],
        &[("GANLAB_FAULT", "step:57")],
    );
    assert!(killed(&o), "{}", text(&o));
    let o = run_study(&file, &out, &["--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resumed: "), "{}", text(&o));
    assert_same_files(&want, &study_files(&out));
    // The noise changed the numbers: the study without it differs.
    let dir = tmp.path().join("plain");
    fs::create_dir_all(&dir).unwrap();
    let plain = reference(&dir, &setup(&dir));
    let key = "000-simultaneous/metrics.csv";
    assert_ne!(plain[key], want[key]);
}
