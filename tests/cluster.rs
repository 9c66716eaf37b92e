//! Studies run as separate processes per trial (`ganlab run --trial`, Slurm array tasks):
//! they share the study folder safely and end with the tables of one local run; `ganlab
//! status` tells each trial's state; `ganlab slurm` writes a job script whose signal handling
//! is checked here with a stand-in `scontrol`. The test against a real Slurm is in
//! `tests/slurm.rs`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::study::{assert_same_files, ganlab_env, run_study, study_files, text};

/// Four seeds of a small ring GAN, checkpoints every 50 steps.
fn study(dir: &Path, steps: u64) -> PathBuf {
    let file = dir.join("cluster.toml");
    fs::write(
        &file,
        format!(
            r#"
[study]
name = "cluster"

[base]
steps = {steps}
data = {{ kind = "ring", modes = 4, radius = 1.0, std = 0.05 }}
generator = {{ kind = "mlp", depth = 1, width = 8, activation = "tanh" }}
discriminator = {{ kind = "mlp", depth = 1, width = 8, activation = "tanh" }}
train = {{ batch = 16 }}
record = {{ every = 1, modes_every = 50, eval_samples = 64, checkpoint_every = 50, checkpoint_minutes = 0.0 }}

[sweep]
seed = [0, 1, 2, 3]

[slurm]
time = "30"
cpus = 1
"#
        ),
    )
    .unwrap();
    file
}

fn spawn(args: &[&str]) -> Child {
    spawn_env(args, &[])
}

fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ganlab"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("GANLAB_FAULT")
        .env("GANLAB_CACHE", common::study::TEST_CACHE)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `ganlab slurm FILE --out OUT` plus `extra`, with `env`.
fn slurm(file: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec![
        "slurm",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ganlab_env(&args, env)
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "waited too long for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status_line<'a>(status: &'a str, trial: &str) -> &'a str {
    status
        .lines()
        .find(|l| l.starts_with(trial))
        .unwrap_or_else(|| panic!("no line for {trial}:\n{status}"))
}

#[test]
fn trials_run_as_separate_processes_end_with_the_tables_of_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 200);
    let whole = tmp.path().join("whole");
    let o = run_study(&file, &whole, &["--jobs", "2"], &[]);
    assert!(o.status.success(), "{}", text(&o));

    // Four processes at once, one trial each (by index, by range, by name), in one folder.
    let parts = tmp.path().join("parts");
    let (f, p) = (file.to_str().unwrap(), parts.to_str().unwrap());
    let children: Vec<Child> = ["0", "1-1", "002-2", "3"]
        .iter()
        .map(|t| spawn(&["run", f, "--out", p, "--quiet", "--trial", t]))
        .collect();
    let outputs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", text(&o));
            text(&o)
        })
        .collect();
    assert_same_files(&study_files(&whole), &study_files(&parts));
    // The last one to end made the report; the others said that it waits.
    let reported = outputs.iter().filter(|o| o.contains("report: ")).count();
    let waited = outputs
        .iter()
        .filter(|o| o.contains("the report waits for the study's other trials"))
        .count();
    assert!(reported >= 1 && reported + waited == 4, "{outputs:#?}");
    assert!(parts.join("report/index.html").is_file());

    let o = ganlab_env(&["status", p], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let s = text(&o);
    for t in ["000-0", "001-1", "002-2", "003-3"] {
        let line = status_line(&s, t);
        assert!(line.contains("done") && line.contains("200/200"), "{line}");
    }
    assert!(s.contains("4 trial(s): 4 done"), "{s}");

    // Running a finished trial again does nothing but say so.
    let o = run_study(&file, &parts, &["--trial", "2"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("0 trial(s) ran"), "{}", text(&o));
}

#[test]
fn a_trial_runs_in_one_process_at_a_time_and_a_whole_run_waits_for_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 100_000);
    let out = tmp.path().join("study");
    let (f, p) = (file.to_str().unwrap(), out.to_str().unwrap());
    let mut first = spawn(&["run", f, "--out", p, "--quiet", "--trial", "1"]);
    wait_for("the first trial's tables", || {
        out.join("001-1/metrics.csv.partial").exists()
    });

    let o = ganlab_env(&["status", p], &[]);
    let s = text(&o);
    let line = status_line(&s, "001-1");
    assert!(
        line.contains("running") && line.contains(&format!("pid = {}", first.id())),
        "{s}"
    );
    assert!(status_line(&s, "000-0").contains("not started"), "{s}");

    // A second process asked for the same trial leaves it alone and names the holder.
    let o = run_study(&file, &out, &["--trial", "1"], &[]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains("left alone: 001-1: another process runs it")
            && msg.contains(&format!("pid = {}", first.id())),
        "{msg}"
    );
    // A run of the whole study is refused while a part runs, naming the trial and holder.
    let o = run_study(&file, &out, &[], &[]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("1 of its trials are being run by other processes: 001-1"),
        "{msg}"
    );

    // Killed without saving: the status says running, but no process holds the trial.
    first.kill().unwrap();
    first.wait().unwrap();
    let s = text(&ganlab_env(&["status", p], &[]));
    let line = status_line(&s, "001-1");
    assert!(
        line.contains("interrupted") && line.contains("ended without saving"),
        "{s}"
    );

    // A whole run holds the study: a part run is refused, naming it.
    let mut whole = spawn(&["run", f, "--out", p, "--quiet"]);
    wait_for("the whole run's first trial", || {
        out.join("000-0/metrics.csv.partial").exists()
    });
    let o = run_study(&file, &out, &["--trial", "3"], &[]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("another ganlab run is writing this study")
            && msg.contains(&format!("pid = {}", whole.id())),
        "{msg}"
    );
    assert!(!out.join("003-3").exists(), "the refused run wrote nothing");
    whole.kill().unwrap();
    whole.wait().unwrap();
}

#[test]
fn bad_trial_selections_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 10);
    let out = tmp.path().join("study");
    for (sel, want) in [
        ("4", "has 4 trial(s), so there is no trial 4"),
        ("0-9", "no trial 9"),
        ("3-1", "the range 3-1 runs backwards"),
        ("seed0", "`seed0` is not a trial"),
        ("1,,2", "an empty item"),
    ] {
        let o = run_study(&file, &out, &["--trial", sel], &[]);
        let msg = text(&o);
        assert_eq!(o.status.code(), Some(2), "{sel}: {msg}");
        assert!(msg.contains(want), "{sel}: {msg}");
        assert!(
            msg.contains("--trial takes indices 0 to 3"),
            "{sel}: says what is allowed: {msg}"
        );
        assert!(!out.exists(), "{sel}: nothing written");
    }
}

#[test]
fn slurm_settings_in_the_file_are_checked_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 10);
    let good = fs::read_to_string(&file).unwrap();
    for (from, to, key, want) in [
        (
            "time = \"30\"",
            "time = \"2h\"",
            "slurm.time",
            "Slurm's forms",
        ),
        ("cpus = 1", "cpus = 0", "slurm.cpus", "at least 1"),
        ("cpus = 1", "cpu = 1", "slurm", "unknown field `cpu`"),
        (
            "cpus = 1",
            "mem = \"8GB\"",
            "slurm.mem",
            "not an amount of memory",
        ),
        (
            "cpus = 1",
            "extra = [\"qos\"]",
            "slurm.extra",
            "not one sbatch option",
        ),
    ] {
        let body = good.replace(from, to);
        let line = 1 + body.lines().position(|l| l.contains(to)).unwrap();
        fs::write(&file, body).unwrap();
        let o = ganlab_env(&["validate", file.to_str().unwrap()], &[]);
        let msg = text(&o);
        assert_eq!(o.status.code(), Some(2), "{to}: {msg}");
        assert!(
            msg.contains(key) && msg.contains(want) && msg.contains("cluster.toml"),
            "{to}: {msg}"
        );
        assert!(
            msg.contains(&format!("cluster.toml:{line}:")),
            "{to}: names the line: {msg}"
        );
    }
}

/// A folder of stand-ins for Slurm's commands that log their arguments.
fn fake_slurm(dir: &Path) -> PathBuf {
    let bin = dir.join("fake-bin");
    fs::create_dir_all(&bin).unwrap();
    for cmd in ["scontrol", "sbatch"] {
        let p = bin.join(cmd);
        let reply = if cmd == "sbatch" { "echo 4242" } else { ":" };
        fs::write(
            &p,
            format!(
                "#!/bin/sh\necho \"{cmd} $*\" >> '{}'\n{reply}\n",
                dir.join("slurm-calls.log").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

#[test]
fn the_job_script_saves_and_requeues_on_the_time_limit_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 100_000);
    let out = tmp.path().join("study");
    let o = slurm(
        &file,
        &out,
        &["--time", "1:00:00", "--max-parallel", "2", "--mem", "2G"],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let script = out.join("slurm/job.sbatch");
    let body = fs::read_to_string(&script).unwrap();
    for line in [
        "#SBATCH --array=0-3%2",
        "#SBATCH --time=1:00:00",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --mem=2G",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@120",
        "#SBATCH --open-mode=append",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} in:\n{body}");
    }
    // Tasks find their trial by name, and the study can be followed before any task runs.
    assert!(
        body.contains("trials=(000-0 001-1 002-2 003-3)") && body.contains("--trial \"$trial\""),
        "{body}"
    );
    let s = text(&ganlab_env(&["status", out.to_str().unwrap()], &[]));
    assert!(s.contains("4 trial(s): 4 not started"), "{s}");

    // The script as Slurm would start it for array task 2, warned before its time limit.
    let bin = fake_slurm(tmp.path());
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let task = |restart: &str| {
        Command::new("bash")
            .arg(&script)
            .env("PATH", &path)
            .env("SLURM_JOB_ID", "107")
            .env("SLURM_ARRAY_JOB_ID", "100")
            .env("SLURM_ARRAY_TASK_ID", "2")
            .env("SLURM_RESTART_COUNT", restart)
            .env("GANLAB_CACHE", common::study::TEST_CACHE)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let child = task("0");
    let metrics = out.join("002-2/metrics.csv.partial");
    wait_for("trial 2's tables", || {
        fs::metadata(&metrics).map_or(0, |m| m.len()) > 20_000
    });
    let s = text(&ganlab_env(&["status", out.to_str().unwrap()], &[]));
    assert!(
        status_line(&s, "002-2").contains("slurm_job = 100_2"),
        "the holder names its array task: {s}"
    );
    let kill = Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(138), "{msg}");
    assert!(msg.contains("requeueing 100_2"), "{msg}");
    let calls = fs::read_to_string(tmp.path().join("slurm-calls.log")).unwrap();
    // The task, not the array (whose id is also one task's job id).
    assert_eq!(calls.trim(), "scontrol requeue 100_2");
    let status = fs::read_to_string(out.join("002-2/status.toml")).unwrap();
    assert!(status.contains("status = \"interrupted\""), "{status}");
    let s = text(&ganlab_env(&["status", out.to_str().unwrap()], &[]));
    assert!(
        status_line(&s, "002-2").contains("the next run resumes it"),
        "{s}"
    );

    // `--submit` goes through sbatch; the array leaves out finished trials.
    fs::create_dir_all(out.join("000-0")).unwrap();
    fs::write(
        out.join("000-0/status.toml"),
        fs::read_to_string(out.join("002-2/status.toml"))
            .unwrap()
            .replace("status = \"interrupted\"", "status = \"done\""),
    )
    .unwrap();
    let o = slurm(&file, &out, &["--submit"], &[("PATH", &path)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("submitted: job 4242"), "{}", text(&o));
    let body = fs::read_to_string(&script).unwrap();
    assert!(body.contains("#SBATCH --array=1-3\n"), "{body}");
    let calls = fs::read_to_string(tmp.path().join("slurm-calls.log")).unwrap();
    assert!(calls.contains("sbatch --parsable"), "{calls}");

    // Without Slurm on the machine, --submit says so and where the script is.
    let empty = tmp.path().join("no-bin");
    fs::create_dir_all(&empty).unwrap();
    let o = slurm(
        &file,
        &out,
        &["--submit"],
        &[("PATH", empty.to_str().unwrap())],
    );
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("cannot run sbatch") && msg.contains("job.sbatch"),
        "{msg}"
    );
}

#[test]
fn slurm_refuses_a_time_limit_inside_its_warning_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 10);
    let out = tmp.path().join("study");
    let o = slurm(&file, &out, &["--time", "2"], &[]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("--time: 2 is 120 s") && msg.contains("more than 180 s"),
        "{msg}"
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn a_run_of_some_trials_refuses_a_study_whose_other_trials_were_recorded_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 20);
    let out = tmp.path().join("study");
    let o = run_study(&file, &out, &["--trial", "0"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let before = fs::read(out.join("experiment.toml")).unwrap();
    fs::write(
        &file,
        fs::read_to_string(&file)
            .unwrap()
            .replace("steps = 20", "steps = 30"),
    )
    .unwrap();
    let o = run_study(&file, &out, &["--trial", "1"], &[]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains(
            "1 other trial(s) of this study (000-0) were recorded with a different configuration"
        ),
        "{msg}"
    );
    assert_eq!(fs::read(out.join("experiment.toml")).unwrap(), before);
    assert!(!out.join("001-1").exists(), "the refused run wrote nothing");
}

#[test]
fn slurm_refuses_a_folder_of_the_users_own_files() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 10);
    let out = tmp.path().join("mine");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("notes.txt"), "mine").unwrap();
    let o = slurm(&file, &out, &[], &[]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("holds files that ganlab did not make"),
        "{msg}"
    );
    let names: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "nothing written beside the user's file: {names:?}"
    );
}

#[test]
fn a_requeued_task_waits_for_the_trial_lock_its_earlier_run_left() {
    let tmp = tempfile::tempdir().unwrap();
    let file = study(tmp.path(), 100_000);
    let out = tmp.path().join("study");
    let (f, p) = (file.to_str().unwrap(), out.to_str().unwrap());
    let task = [
        ("SLURM_ARRAY_JOB_ID", "77"),
        ("SLURM_ARRAY_TASK_ID", "1"),
        ("SLURM_JOB_ID", "78"),
    ];
    let args = ["run", f, "--out", p, "--quiet", "--trial", "001-1"];
    // The earlier run of task 77_1, still holding its trial (as a dead node's lock would).
    let mut earlier = spawn_env(&args, &task);
    wait_for("the earlier run's checkpoint", || {
        fs::read_dir(out.join("001-1/checkpoints")).map_or(0, |d| d.count()) >= 1
    });
    let mut again = spawn_env(&args, &task);
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        again.try_wait().unwrap().is_none(),
        "the requeued run waits past the 2 s it gives other holders"
    );
    earlier.kill().unwrap();
    earlier.wait().unwrap();
    wait_for("the requeued run to hold the trial", || {
        let s = text(&ganlab_env(&["status", p], &[]));
        s.lines()
            .any(|l| l.starts_with("001-1") && l.contains(&format!("pid = {}", again.id())))
    });
    again.kill().unwrap();
    let o = again.wait_with_output().unwrap();
    assert!(
        text(&o).contains("waiting for the lock left by an earlier run of this Slurm task")
            && text(&o).contains("slurm_job = 77_1"),
        "{}",
        text(&o)
    );
}
