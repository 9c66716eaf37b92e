//! An output folder on a read-only file system, or one that runs out of space, gives a clear
//! error and leaves nothing half-written under a final name.
//!
//! The small file systems are real: a tmpfs mounted inside a user and mount namespace
//! (`unshare --user --map-root-user --mount`), so the test needs no privilege. Where the
//! machine allows no such namespace the test says so and checks nothing.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::study::text;

const LONG: &str = r#"
[study]
name = "disk"

[base]
steps = 3000
data = { kind = "ring", modes = 4, radius = 1.0, std = 0.05 }
generator = { kind = "mlp", depth = 1, width = 4 }
discriminator = { kind = "mlp", depth = 1, width = 4 }
train = { batch = 8 }
record = { every = 1, modes_every = 1000, eval_samples = 32, checkpoint_every = 500 }
"#;

/// What happened on a small file system: the binary's output and exit code, and the files it
/// left there (path relative to the mount, and size).
struct OnSmallFs {
    output: String,
    code: i32,
    files: Vec<(String, u64)>,
}

/// Runs `ganlab run FILE --out MOUNT/study` with a fresh tmpfs of `size` at MOUNT (read-only
/// when `read_only`) inside a user and mount namespace, and lists what it left there before
/// the namespace (and the tmpfs) goes. None where namespaces are not allowed.
fn run_on_small_fs(file: &Path, mount: &Path, size: &str, read_only: bool) -> Option<OnSmallFs> {
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: this machine allows no user and mount namespace (unshare)");
        return None;
    }
    fs::create_dir_all(mount).unwrap();
    let m = mount.display();
    let remount = if read_only {
        format!("mount -o remount,ro {m} && ")
    } else {
        String::new()
    };
    let script = format!(
        "mount -t tmpfs -o size={size} tmpfs {m} && {remount}\
         {bin} run {f} --out {m}/study --quiet; echo \"ganlab-exit=$?\"; \
         find {m} -type f -printf 'FILE %P %s\\n'",
        bin = env!("CARGO_BIN_EXE_ganlab"),
        f = file.display(),
    );
    let o: Output = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(script)
        .env_remove("GANLAB_FAULT")
        .output()
        .unwrap();
    let all = text(&o);
    let code = all
        .lines()
        .find_map(|l| l.strip_prefix("ganlab-exit="))
        .unwrap_or_else(|| panic!("the mount failed: {all}"))
        .trim()
        .parse()
        .unwrap();
    let files = all
        .lines()
        .filter_map(|l| l.strip_prefix("FILE "))
        .map(|l| {
            let (p, n) = l.rsplit_once(' ').unwrap();
            (p.to_string(), n.parse().unwrap())
        })
        .collect();
    let output = all
        .lines()
        .filter(|l| !l.starts_with("FILE ") && !l.starts_with("ganlab-exit="))
        .collect::<Vec<_>>()
        .join("\n");
    Some(OnSmallFs {
        output,
        code,
        files,
    })
}

#[test]
fn a_read_only_output_folder_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("disk.toml");
    fs::write(&file, LONG).unwrap();
    let Some(r) = run_on_small_fs(&file, &tmp.path().join("ro"), "1m", true) else {
        return;
    };
    assert_eq!(r.code, 2, "{}", r.output);
    assert!(r.output.contains("Read-only file system"), "{}", r.output);
    assert!(
        r.output.contains("ro/study"),
        "the error names the folder: {}",
        r.output
    );
    assert!(!r.output.contains("panicked"), "{}", r.output);
    assert!(r.files.is_empty(), "{:?}", r.files);
}

#[test]
fn a_full_disk_fails_the_trial_clearly_and_leaves_no_half_written_final_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("disk.toml");
    fs::write(&file, LONG).unwrap();
    // The trial's metrics alone need about 500 KiB.
    let Some(r) = run_on_small_fs(&file, &tmp.path().join("full"), "96k", false) else {
        return;
    };
    let out = &r.output;
    assert_eq!(r.code, 1, "{out}");
    assert!(out.contains("No space left on device"), "{out}");
    assert!(out.contains("failed: 000: cannot write"), "{out}");
    assert!(
        out.contains("metrics.csv.partial"),
        "the first failure is named: {out}"
    );
    assert!(!out.contains("the trials are recorded"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    // No temporary file, no report staging folder, and no table under its final name: the
    // trial never finished, so its tables are all still `.partial`.
    for (path, _) in &r.files {
        assert!(!path.ends_with('~'), "{path}: {:?}", r.files);
        assert!(!path.contains("report"), "{path}: {:?}", r.files);
        for table in ["metrics.csv", "modes.csv", "eigen.csv", "samples.csv"] {
            assert!(
                !path.ends_with(&format!("000/{table}")),
                "{path}: {:?}",
                r.files
            );
        }
    }
}
