//! Studies on a Slurm cluster: an array job with one trial per array task, written (and, when
//! asked, submitted with `sbatch`) by `ganlab slurm`. ganlab schedules nothing itself.
//!
//! Each task runs `ganlab run FILE --out OUT --trial $SLURM_ARRAY_TASK_ID`, which locks only
//! its own trial, so tasks share the study folder (on a file system all nodes see). A task
//! asks Slurm for SIGUSR1 some time before its limit (`--signal=B:USR1@S`); its script passes
//! it on, the trial saves its state and the script requeues the task, whose next run resumes
//! the trial from that state. SIGTERM (scancel, preemption, `scontrol requeue`) reaches ganlab
//! directly and saves the state the same way; a requeued task resumes. The last task to end
//! writes `trials.csv` complete and makes the report.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::spec::Study;
use crate::store::{self, TrialDir};

/// Seconds before the time limit at which a task is warned, unless the file says otherwise:
/// enough for a DCGAN trial to finish its step and write a checkpoint.
pub const DEFAULT_SIGNAL_SECONDS: u32 = 120;

/// The `[slurm]` section of an experiment file: the resources of each array task. The flags
/// of `ganlab slurm` are the same settings and override it; what neither gives is left to the
/// cluster's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct SlurmSettings {
    /// `sbatch --partition`.
    #[arg(long)]
    pub partition: Option<String>,
    /// `sbatch --account`.
    #[arg(long)]
    pub account: Option<String>,
    /// Time limit per task, in Slurm's forms: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`,
    /// `D-HH:MM:SS`.
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task.
    #[arg(long)]
    pub cpus: Option<u32>,
    /// Memory per task: a whole number with an optional unit K, M, G or T (`8G`).
    #[arg(long)]
    pub mem: Option<String>,
    /// GPUs per task (`--gres=gpu:G`).
    #[arg(long)]
    pub gpus: Option<u32>,
    /// The most tasks running at once (`--array=...%K`).
    #[arg(long)]
    pub max_parallel: Option<u32>,
    /// Seconds before the time limit at which a task saves its trial and requeues itself
    /// (default 120).
    #[arg(long)]
    pub signal_seconds: Option<u32>,
    /// Further `sbatch` options, one per line of the script (`"--qos=long"`).
    #[arg(long, value_name = "OPTION", allow_hyphen_values = true)]
    pub extra: Vec<String>,
}

impl SlurmSettings {
    /// Checks every value: `Err((key, what is allowed))`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: String| Err((k.to_string(), m));
        for (key, value) in [("partition", &self.partition), ("account", &self.account)] {
            if let Some(v) = value {
                if v.is_empty() || !v.chars().all(|c| c.is_ascii_graphic() && c != '\'') {
                    return bad(
                        key,
                        format!("`{v}` is not a Slurm name: no spaces or quotes"),
                    );
                }
            }
        }
        if let Some(t) = &self.time {
            check_time(t).map_err(|m| ("time".to_string(), m))?;
        }
        if let Some(m) = &self.mem {
            check_mem(m).map_err(|m| ("mem".to_string(), m))?;
        }
        for (key, value) in [
            ("cpus", self.cpus),
            ("gpus", self.gpus),
            ("max_parallel", self.max_parallel),
        ] {
            if value == Some(0) {
                return bad(
                    key,
                    "must be at least 1 (leave it out for Slurm's default)".into(),
                );
            }
        }
        if let Some(s) = self.signal_seconds {
            if !(10..=65535).contains(&s) {
                return bad(
                    "signal_seconds",
                    format!("{s} is out of range: 10 to 65535 seconds before the time limit"),
                );
            }
        }
        // Slurm may warn up to a minute early: a limit shorter than that would requeue the
        // task before it trained a step, again and again.
        if let Some(limit) = self.time.as_deref().and_then(time_seconds) {
            let warn = self.signal_seconds.unwrap_or(DEFAULT_SIGNAL_SECONDS);
            if limit <= u64::from(warn) + 60 {
                return bad(
                    "time",
                    format!(
                        "{} is {limit} s, which leaves no time to train before the time-limit \
                         warning ({warn} s before the end, and Slurm may send it up to 60 s \
                         early): give more than {} s, or a smaller signal_seconds",
                        self.time.as_deref().unwrap_or_default(),
                        u64::from(warn) + 60
                    ),
                );
            }
        }
        for (i, e) in self.extra.iter().enumerate() {
            if !e.starts_with("--") || e.contains(['\n', '\r']) {
                return bad(
                    &format!("extra[{i}]"),
                    format!(
                        "`{e}` is not one sbatch option: write it as `--name=value` on one line"
                    ),
                );
            }
        }
        Ok(())
    }

    /// These settings, with every value that `over` gives replacing this one's.
    pub fn overridden_by(&self, over: &SlurmSettings) -> SlurmSettings {
        SlurmSettings {
            partition: over.partition.clone().or_else(|| self.partition.clone()),
            account: over.account.clone().or_else(|| self.account.clone()),
            time: over.time.clone().or_else(|| self.time.clone()),
            cpus: over.cpus.or(self.cpus),
            mem: over.mem.clone().or_else(|| self.mem.clone()),
            gpus: over.gpus.or(self.gpus),
            max_parallel: over.max_parallel.or(self.max_parallel),
            signal_seconds: over.signal_seconds.or(self.signal_seconds),
            extra: self.extra.iter().chain(&over.extra).cloned().collect(),
        }
    }
}

/// Slurm's time forms: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
/// days-hours:minutes and days-hours:minutes:seconds.
pub fn check_time(t: &str) -> Result<(), String> {
    let allowed = "a time limit in Slurm's forms: `90` (minutes), `90:00` (minutes:seconds), \
                   `2:00:00`, `1-12` (days-hours), `1-12:30`, `1-12:30:00`";
    let numbers = |s: &str| -> Option<Vec<u64>> {
        s.split(':')
            .map(|p| {
                (!p.is_empty() && p.len() <= 6)
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect()
    };
    let ok = match t.split_once('-') {
        Some((days, rest)) => {
            days.parse::<u64>().is_ok() && numbers(rest).is_some_and(|v| (1..=3).contains(&v.len()))
        }
        None => numbers(t).is_some_and(|v| (1..=3).contains(&v.len())),
    };
    if !ok || t.chars().all(|c| c == '0' || c == ':' || c == '-') {
        return Err(format!("`{t}` is not {allowed}"));
    }
    Ok(())
}

/// Seconds of a time limit in Slurm's forms (see [`check_time`]).
pub fn time_seconds(t: &str) -> Option<u64> {
    check_time(t).ok()?;
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, Some(r)),
        None => (0, None),
    };
    let parts: Vec<u64> = rest
        .unwrap_or(t)
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let clock = match (rest.is_some(), parts.as_slice()) {
        // days-hours[:minutes[:seconds]]
        (true, [h]) => h * 3600,
        (true, [h, m]) => h * 3600 + m * 60,
        (true, [h, m, s]) => h * 3600 + m * 60 + s,
        // minutes, minutes:seconds, hours:minutes:seconds
        (false, [m]) => m * 60,
        (false, [m, s]) => m * 60 + s,
        (false, [h, m, s]) => h * 3600 + m * 60 + s,
        _ => return None,
    };
    Some(days * 86400 + clock)
}

/// A whole amount of memory with an optional unit K, M, G or T (Slurm's default unit is M).
pub fn check_mem(m: &str) -> Result<(), String> {
    let digits = m.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    let unit_len = m.len() - digits.len();
    if unit_len > 1 || digits.is_empty() || digits.parse::<u64>().map_or(true, |v| v == 0) {
        return Err(format!(
            "`{m}` is not an amount of memory: a whole number with an optional unit K, M, G or \
             T, such as `8G` or `500M`"
        ));
    }
    Ok(())
}

/// Slurm's array syntax for sorted indices: runs as ranges (`0-3,5,7-9`).
pub fn array_ranges(indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        parts.push(match j > i {
            true => format!("{}-{}", indices[i], indices[j]),
            false => indices[i].to_string(),
        });
        i = j + 1;
    }
    parts.join(",")
}

/// A path as one single-quoted word of bash.
fn quoted(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// A job script written for a study.
#[derive(Debug, Clone)]
pub struct JobScript {
    pub path: PathBuf,
    /// The array task numbers (trial indices) it runs, in Slurm's syntax.
    pub array: String,
    pub tasks: usize,
}

/// The folder, under the study folder, of the job script and the tasks' logs.
pub const SLURM_DIR: &str = "slurm";

/// The text of the array job script: `ganlab` runs trial `$SLURM_ARRAY_TASK_ID` of `file` into
/// `out` (all paths absolute).
pub fn script_text(
    study: &Study,
    ganlab: &Path,
    file: &Path,
    out: &Path,
    array: &str,
    names: &[String],
    s: &SlurmSettings,
) -> String {
    let logs = out.join(SLURM_DIR);
    let mut opts = vec![
        format!("--job-name=ganlab-{}", study.name),
        match s.max_parallel {
            Some(k) => format!("--array={array}%{k}"),
            None => format!("--array={array}"),
        },
        format!("--output={}", logs.join("%A_%a.log").display()),
        // A requeued task appends to its log instead of replacing it.
        "--open-mode=append".into(),
        "--requeue".into(),
        format!(
            "--signal=B:USR1@{}",
            s.signal_seconds.unwrap_or(DEFAULT_SIGNAL_SECONDS)
        ),
        "--ntasks=1".into(),
    ];
    let flag = |name: &str, v: &Option<String>| v.as_ref().map(|v| format!("--{name}={v}"));
    opts.extend(flag("partition", &s.partition));
    opts.extend(flag("account", &s.account));
    opts.extend(flag("time", &s.time));
    opts.extend(s.cpus.map(|c| format!("--cpus-per-task={c}")));
    opts.extend(flag("mem", &s.mem));
    opts.extend(s.gpus.map(|g| format!("--gres=gpu:{g}")));
    opts.extend(s.extra.iter().cloned());
    let sbatch: String = opts.iter().map(|o| format!("#SBATCH {o}\n")).collect();
    format!(
        r#"#!/bin/bash
# Written by `ganlab slurm` (ganlab {version}) for the study `{name}`: one trial per array task,
# the task number being the trial's index (`ganlab validate` lists them).
#   submit:  sbatch {script}
#   follow:  ganlab status {out_q}
{sbatch}set -u
# The trial of each array task, by name: an experiment file edited after submission cannot
# make a task run another trial (a name it no longer has is refused).
trials=({names})
trial="${{trials[$SLURM_ARRAY_TASK_ID]}}"
echo "ganlab: task ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} (trial $trial) on $(hostname), $(date -u +%Y-%m-%dT%H:%M:%SZ), run $((${{SLURM_RESTART_COUNT:-0}} + 1))"
# Slurm's warning before the time limit comes to this script (B:USR1): pass it on, and the
# trial saves its state. SIGTERM (scancel, preemption, scontrol requeue) reaches ganlab itself:
# wait while it saves. (Set before ganlab starts, so that no signal finds the shell unready.)
pid=""
trap '[ -n "$pid" ] && kill -USR1 "$pid" 2>/dev/null' USR1
trap ':' TERM
{ganlab} run {file} --out {out_q} --trial "$trial" --jobs 1 --quiet &
pid=$!
rc=0
while :; do
    wait "$pid"
    rc=$?
    kill -0 "$pid" 2>/dev/null || break
done
# A signal may have cut the last wait short: ganlab's own status, when bash kept it.
wait "$pid" 2>/dev/null && rc=0 || {{ r=$?; [ "$r" -ne 127 ] && rc=$r; }}
# This task only: the array's own job id would requeue every task of it.
task="${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
if [ "$rc" -eq 138 ]; then
    echo "ganlab: the time limit is near; the trial saved its state; requeueing $task"
    scontrol requeue "$task" || echo "ganlab: the requeue failed; the trial resumes when \
the study is submitted again (ganlab slurm {file} --out {out_q} --submit)"
fi
exit "$rc"
"#,
        version = env!("CARGO_PKG_VERSION"),
        name = study.name,
        script = quoted(&logs.join("job.sbatch")),
        out_q = quoted(out),
        names = names.join(" "),
        ganlab = quoted(ganlab),
        file = quoted(file),
    )
}

/// Writes `OUT/slurm/job.sbatch` for the trials of `study` not yet finished under `out`;
/// `None` when every trial is finished. `out` is made a study folder if it is not one yet
/// (a folder of the user's own files is refused).
pub fn write_job(
    study: &Study,
    out: &Path,
    settings: &SlurmSettings,
) -> anyhow::Result<Option<JobScript>> {
    settings.check().map_err(|(k, m)| {
        anyhow::anyhow!("the Slurm settings (flags over the file's [slurm]): `{k}`: {m}")
    })?;
    let todo: Vec<usize> = study
        .trials
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            TrialDir::new(out, &t.name)
                .read_status()
                .is_none_or(|s| !s.status.is_finished())
        })
        .map(|(i, _)| i)
        .collect();
    if todo.is_empty() {
        return Ok(None);
    }
    // Slurm writes the logs into a path it is given unquoted and with `%` patterns.
    let shown = out.display().to_string();
    if shown.contains(|c: char| c.is_whitespace() || c == '%' || c == '\'') {
        anyhow::bail!(
            "{shown}: a study folder for Slurm needs a path without spaces, quotes or `%` \
             (sbatch reads the log path from the script); pick another --out"
        );
    }
    store::lock::check_study_folder(out)?;
    let logs = out.join(SLURM_DIR);
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    // A study folder from the start, so that `ganlab status` follows it before any task runs.
    crate::study::write_study_files(study, out)?;
    let absolute = |p: &Path| {
        std::fs::canonicalize(p).with_context(|| format!("cannot resolve {}", p.display()))
    };
    let ganlab = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("cannot tell where this ganlab binary is")?;
    let array = array_ranges(&todo);
    let names: Vec<String> = study.trials.iter().map(|t| t.name.clone()).collect();
    let text = script_text(
        study,
        &ganlab,
        &absolute(&study.file)?,
        &absolute(out)?,
        &array,
        &names,
        settings,
    );
    let path = logs.join("job.sbatch");
    store::write_atomic(&path, text.as_bytes())?;
    Ok(Some(JobScript {
        path,
        array,
        tasks: todo.len(),
    }))
}

/// Submits a job script with `sbatch --parsable`: the job id.
pub fn submit(script: &Path) -> anyhow::Result<String> {
    let o = std::process::Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run sbatch ({e}): Slurm's commands are not on this machine's PATH; the \
                 job script is {}: submit it with `sbatch` where Slurm runs",
                script.display()
            )
        })?;
    if !o.status.success() {
        anyhow::bail!(
            "sbatch refused {}: {}",
            script.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    let out = String::from_utf8_lossy(&o.stdout);
    // `--parsable` prints `JOBID` or `JOBID;CLUSTER`.
    let id = out.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        anyhow::bail!("sbatch printed no job id: {}", out.trim());
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_ranges_join_runs_of_indices() {
        assert_eq!(array_ranges(&[0, 1, 2, 3]), "0-3");
        assert_eq!(array_ranges(&[0, 2, 3, 4, 7, 9, 10]), "0,2-4,7,9-10");
        assert_eq!(array_ranges(&[5]), "5");
    }

    #[test]
    fn slurm_times_and_memory_are_checked_in_slurms_forms() {
        for ok in ["90", "90:00", "2:00:00", "1-12", "1-12:30", "1-12:30:00"] {
            assert!(check_time(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "2h",
            "1:2:3:4",
            "-5",
            "1-",
            "0",
            "0:00",
            "ab:cd",
            "1-2:3:4:5",
        ] {
            let e = check_time(bad).unwrap_err();
            assert!(e.contains("Slurm's forms"), "{bad}: {e}");
        }
        assert_eq!(time_seconds("90"), Some(5400));
        assert_eq!(time_seconds("90:30"), Some(5430));
        assert_eq!(time_seconds("2:00:00"), Some(7200));
        assert_eq!(time_seconds("1-12"), Some(129_600));
        assert_eq!(time_seconds("1-12:30"), Some(131_400));
        assert_eq!(time_seconds("1-0:0:5"), Some(86_405));
        for ok in ["8G", "500M", "1024", "2t"] {
            assert!(check_mem(ok).is_ok(), "{ok}");
        }
        for bad in ["", "G", "8GB", "0", "-1G", "1.5G"] {
            assert!(check_mem(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_override_the_file_and_bad_values_name_their_key() {
        let file = SlurmSettings {
            partition: Some("cpu".into()),
            time: Some("1:00:00".into()),
            cpus: Some(2),
            extra: vec!["--qos=long".into()],
            ..Default::default()
        };
        let flags = SlurmSettings {
            time: Some("30".into()),
            ..Default::default()
        };
        let s = file.overridden_by(&flags);
        assert_eq!(s.time.as_deref(), Some("30"));
        assert_eq!(s.partition.as_deref(), Some("cpu"));
        assert_eq!(s.cpus, Some(2));
        assert!(s.check().is_ok());
        // A limit within the warning (and Slurm's minute of slack) would requeue forever.
        let short = SlurmSettings {
            time: Some("3".into()),
            ..Default::default()
        };
        let (key, msg) = short.check().unwrap_err();
        assert!(key == "time" && msg.contains("more than 180 s"), "{msg}");
        let shorter_warning = SlurmSettings {
            signal_seconds: Some(30),
            ..short
        };
        assert!(shorter_warning.check().is_ok());
        let bad = SlurmSettings {
            max_parallel: Some(0),
            ..Default::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "max_parallel");
        let bad = SlurmSettings {
            extra: vec!["qos=long".into()],
            ..Default::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "extra[0]");
        let bad = SlurmSettings {
            partition: Some("a b".into()),
            ..Default::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "partition");
    }
}
