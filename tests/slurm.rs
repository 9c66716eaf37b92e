//! A real Slurm: a single-node cluster (Debian's slurm-wlm 22.05 and munge) started on this
//! machine's loopback in a temporary folder, as the user running the test. A 4-trial study
//! goes through `ganlab slurm --submit` as an array job; one task is requeued while its trial
//! runs (`scontrol requeue`), another gets the time-limit warning (SIGUSR1) and requeues
//! itself; both resume from their saved state, and the study ends with the tables of a local
//! run.
//!
//! Where Slurm cannot start (not installed, say) the test says so on the terminal and returns
//! without checking anything; with `GANLAB_REQUIRE_SLURM=1` (set by `.ci/run` once it has
//! installed Slurm) that is a failure instead.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::study::{assert_same_files, run_study, study_files, text};

const NODE: &str = "ganlabnode";

/// A running single-node cluster; dropping it stops every daemon and job.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    daemons: Vec<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn user_name() -> String {
    let o = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

impl Cluster {
    /// A client command of this cluster (`sbatch`, `squeue`, `scontrol`, or ganlab itself).
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SLURM_")) {
            c.env_remove(k);
        }
        c.env("SLURM_CONF", &self.conf)
            .env("GANLAB_CACHE", common::study::TEST_CACHE)
            .env_remove("GANLAB_FAULT");
        c
    }

    fn output(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    fn log(&self, name: &str) -> String {
        fs::read_to_string(self.dir.path().join("log").join(name)).unwrap_or_default()
    }

    /// Starts munge, slurmctld and slurmd; `Err` says why it could not.
    fn start() -> Result<Cluster, String> {
        for program in [
            "munged",
            "slurmctld",
            "slurmd",
            "sbatch",
            "scontrol",
            "squeue",
        ] {
            let found = std::env::var_os("PATH").is_some_and(|p| {
                std::env::split_paths(&p)
                    .chain([PathBuf::from("/usr/sbin")])
                    .any(|d| d.join(program).is_file())
            });
            if !found {
                return Err(format!(
                    "`{program}` is not installed (Debian: apt-get install slurm-wlm munge)"
                ));
            }
        }
        // Short: munge's and slurmd's socket paths must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("gl")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        let d = dir.path();
        for sub in ["munge", "state", "spool", "log"] {
            fs::create_dir_all(d.join(sub)).map_err(|e| e.to_string())?;
        }
        // A key of the munge daemon's own, readable by this user alone.
        let key = d.join("munge/munge.key");
        let mut bytes = vec![0u8; 1024];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .map_err(|e| e.to_string())?;
        {
            use std::os::unix::fs::OpenOptionsExt;
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&key)
                .and_then(|mut f| f.write_all(&bytes))
                .map_err(|e| e.to_string())?;
        }
        let sbin = |p: &str| {
            let local = Path::new("/usr/sbin").join(p);
            if local.is_file() {
                local
            } else {
                PathBuf::from(p)
            }
        };
        let socket = d.join("munge/munge.sock");
        let me = user_name();
        let conf = d.join("slurm.conf");
        let p = |s: &str| d.join(s).display().to_string();
        fs::write(d.join("plugstack.conf"), "").map_err(|e| e.to_string())?;
        fs::write(
            &conf,
            format!(
                "ClusterName=ganlab\n\
                 SlurmctldHost=localhost(127.0.0.1)\n\
                 SlurmctldPort={ctld}\n\
                 SlurmdPort={slurmd}\n\
                 SlurmUser={me}\n\
                 SlurmdUser={me}\n\
                 AuthType=auth/munge\n\
                 CredType=cred/munge\n\
                 AuthInfo=socket={socket},cred_expire=5\n\
                 StateSaveLocation={state}\n\
                 SlurmdSpoolDir={spool}/%n\n\
                 SlurmctldPidFile={dir}/slurmctld.pid\n\
                 SlurmdPidFile={dir}/slurmd.%n.pid\n\
                 SlurmctldLogFile={log}/slurmctld.log\n\
                 SlurmdLogFile={log}/slurmd.log\n\
                 PlugStackConfig={dir}/plugstack.conf\n\
                 MailProg=/bin/true\n\
                 ProctrackType=proctrack/linuxproc\n\
                 TaskPlugin=task/none\n\
                 JobAcctGatherType=jobacct_gather/none\n\
                 AccountingStorageType=accounting_storage/none\n\
                 JobCompType=jobcomp/none\n\
                 SwitchType=switch/none\n\
                 MpiDefault=none\n\
                 SchedulerType=sched/backfill\n\
                 SchedulerParameters=bf_interval=1,sched_interval=1\n\
                 SelectType=select/cons_tres\n\
                 SelectTypeParameters=CR_CPU\n\
                 SlurmdParameters=config_overrides\n\
                 ReturnToService=2\n\
                 MinJobAge=600\n\
                 KillWait=10\n\
                 NodeName={NODE} NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN\n\
                 PartitionName=ganlab Nodes={NODE} Default=YES MaxTime=INFINITE State=UP\n",
                ctld = free_port(),
                slurmd = free_port(),
                socket = socket.display(),
                state = p("state"),
                spool = p("spool"),
                dir = d.display(),
                log = p("log"),
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut cluster = Cluster {
            conf,
            daemons: Vec::new(),
            dir,
        };
        let d = cluster.dir.path().to_path_buf();
        let spawn = |c: &mut Command| {
            c.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("{c:?}: {e}"))
        };
        // --force: the temporary folder is private (0700), which munged would refuse.
        let munged = spawn(
            cluster
                .command(sbin("munged"))
                .arg("-F")
                .arg("--force")
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--key-file={}", key.display()))
                .arg(format!(
                    "--pid-file={}",
                    d.join("munge/munged.pid").display()
                ))
                .arg(format!("--log-file={}", d.join("log/munged.log").display()))
                .arg(format!(
                    "--seed-file={}",
                    d.join("munge/munged.seed").display()
                )),
        )?;
        cluster.daemons.push(munged);
        if !wait_until(Duration::from_secs(20), || socket.exists()) {
            return Err(format!(
                "munged did not start: {}",
                cluster.log("munged.log")
            ));
        }
        let conf = cluster.conf.display().to_string();
        let ctld = spawn(cluster.command(sbin("slurmctld")).args(["-D", "-f", &conf]))?;
        cluster.daemons.push(ctld);
        if !wait_until(Duration::from_secs(30), || {
            text(&cluster.output("scontrol", &["ping"])).contains("is UP")
        }) {
            return Err(format!(
                "slurmctld did not come up: {}",
                cluster.log("slurmctld.log")
            ));
        }
        let slurmd = spawn(
            cluster
                .command(sbin("slurmd"))
                .args(["-D", "-N", NODE, "-f", &conf]),
        )?;
        cluster.daemons.push(slurmd);
        if !wait_until(Duration::from_secs(30), || {
            let o = cluster.output("sinfo", &["-h", "-N", "-n", NODE, "-o", "%T"]);
            String::from_utf8_lossy(&o.stdout).trim() == "idle"
        }) {
            return Err(format!(
                "slurmd did not register its node: {}",
                cluster.log("slurmd.log")
            ));
        }
        Ok(cluster)
    }

    /// The state of each task of array job `job` (`%i %T`: `12_0 RUNNING`).
    fn tasks(&self, job: &str) -> Vec<(String, String)> {
        let o = self.output("squeue", &["-h", "-t", "all", "-j", job, "-o", "%i %T"]);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| {
                let (id, state) = l.trim().split_once(' ')?;
                Some((id.to_string(), state.to_string()))
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.output("scancel", &["--user", &user_name()]);
        let _ = wait_until(Duration::from_secs(30), || {
            let o = self.output("squeue", &["-h", "-t", "R,CG,S"]);
            o.stdout.iter().all(u8::is_ascii_whitespace)
        });
        let _ = self.output("scontrol", &["shutdown"]);
        // slurmd and slurmctld end on shutdown; munged on SIGTERM; stragglers are killed.
        for (i, d) in self.daemons.iter_mut().enumerate().rev() {
            if i == 0 {
                let _ = Command::new("kill").arg(d.id().to_string()).status();
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while d.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

/// Says on the terminal (past the test harness's capture) that the test checked nothing.
fn skip(why: &str) {
    let msg = format!("\nSKIPPED tests/slurm.rs: Slurm cannot start here: {why}\n");
    if std::env::var("GANLAB_REQUIRE_SLURM").is_ok_and(|v| v == "1") {
        panic!("{msg}(GANLAB_REQUIRE_SLURM=1)");
    }
    let _ = std::io::stderr().write_all(msg.as_bytes());
}

const STUDY: &str = r#"
[study]
name = "slurm"

[base]
steps = 30000
data = { kind = "ring", modes = 4, radius = 1.0, std = 0.05 }
generator = { kind = "mlp", depth = 1, width = 8, activation = "tanh" }
discriminator = { kind = "mlp", depth = 1, width = 8, activation = "tanh" }
train = { batch = 16 }
record = { every = 10, modes_every = 1000, eval_samples = 64, checkpoint_every = 1000, checkpoint_minutes = 0.0 }

[sweep]
seed = [0, 1, 2, 3]

[slurm]
time = "30"
cpus = 1
"#;

#[test]
fn an_array_job_on_a_real_slurm_ends_with_the_tables_of_a_local_run_when_tasks_are_requeued() {
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(why) => return skip(&why),
    };
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("slurm.toml");
    fs::write(&file, STUDY).unwrap();
    let local = tmp.path().join("local");
    let o = run_study(&file, &local, &["--jobs", "2"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let local_s = started.elapsed().as_secs_f64();

    let out = tmp.path().join("cluster");
    let o = cluster
        .command(env!("CARGO_BIN_EXE_ganlab"))
        .args([
            "slurm",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .arg("--submit")
        .output()
        .unwrap();
    let msg = text(&o);
    assert!(o.status.success(), "{msg}");
    let job = msg
        .split("submitted: job ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .map(|id| id.trim().to_string())
        .unwrap_or_else(|| panic!("no job id: {msg}"));
    let submitted = Instant::now();

    // Task 0 is requeued a little way into its trial.
    let checkpoints = out.join("000-0/checkpoints");
    let underway = wait_until(Duration::from_secs(120), || {
        fs::read_dir(&checkpoints).map_or(0, |d| d.count()) >= 3
    });
    assert!(
        underway,
        "task 0 never got going: {:?}",
        cluster.tasks(&job)
    );
    let task0 = format!("{job}_0");
    let o = cluster.output("scontrol", &["requeue", &task0]);
    assert!(o.status.success(), "scontrol requeue: {}", text(&o));
    let requeued = Instant::now();

    // Task 1 gets the time-limit warning as Slurm sends it (SIGUSR1 to the batch script):
    // the trial saves its state and the script requeues its own task.
    let checkpoints = out.join("001-1/checkpoints");
    let underway = wait_until(Duration::from_secs(120), || {
        fs::read_dir(&checkpoints).map_or(0, |d| d.count()) >= 3
    });
    assert!(
        underway,
        "task 1 never got going: {:?}",
        cluster.tasks(&job)
    );
    let task1 = format!("{job}_1");
    let logs = |id: &str| {
        fs::read_to_string(out.join("slurm").join(format!("{id}.log"))).unwrap_or_default()
    };
    let o = cluster.output("scancel", &["--batch", "--signal=USR1", &task1]);
    if !o.status.success() {
        // A task that started a moment ago may still be configuring: slurmctld then answers
        // "Job can not be altered now" although the signal went through, and scancel retries
        // 5 s later, after the task has requeued itself. What counts is that the script got
        // the warning; the assertions below check what it did with it.
        let warned = wait_until(Duration::from_secs(60), || {
            logs(&task1).contains("the time limit is near")
        });
        assert!(
            warned,
            "scancel --signal=USR1 failed and task 1 never got the warning: {}\n{}",
            text(&o),
            cluster.log("slurmctld.log")
        );
    }

    let ended = wait_until(Duration::from_secs(300), || {
        let tasks = cluster.tasks(&job);
        tasks.len() == 4
            && tasks.iter().all(|(_, s)| {
                matches!(s.as_str(), "COMPLETED" | "FAILED" | "CANCELLED" | "TIMEOUT")
            })
    });
    assert!(
        ended,
        "the array did not end: {:?}\n{}\n{}",
        cluster.tasks(&job),
        logs(&format!("{job}_0")),
        cluster.log("slurmctld.log")
    );
    let tasks = cluster.tasks(&job);
    assert!(
        tasks.iter().all(|(_, s)| s == "COMPLETED"),
        "{tasks:?}\n{}",
        logs(&format!("{job}_0"))
    );
    let cluster_s = submitted.elapsed().as_secs_f64();

    // Task 0 ran twice and its second run resumed the trial from the state the first saved.
    let log0 = logs(&format!("{job}_0"));
    assert!(log0.contains("run 1") && log0.contains("run 2"), "{log0}");
    assert!(
        log0.contains("resumed: 000-0 from its checkpoint"),
        "{log0}"
    );
    let status = fs::read_to_string(out.join("000-0/status.toml")).unwrap();
    assert!(status.contains("resumed_from"), "{status}");
    assert!(status.contains("status = \"done\""), "{status}");
    let log1 = logs(&task1);
    assert!(
        log1.contains(&format!(
            "the time limit is near; the trial saved its state; requeueing {task1}"
        )) && log1.contains("run 2")
            && log1.contains("resumed: 001-1 from its checkpoint"),
        "{log1}"
    );
    // The other tasks ran once.
    for t in [2, 3] {
        let log = logs(&format!("{job}_{t}"));
        assert!(log.contains("run 1") && !log.contains("run 2"), "{log}");
    }

    assert_same_files(&study_files(&local), &study_files(&out));
    assert!(
        out.join("report/index.html").is_file(),
        "the last task made the report"
    );
    let o = cluster
        .command(env!("CARGO_BIN_EXE_ganlab"))
        .args(["status", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(text(&o).contains("4 trial(s): 4 done"), "{}", text(&o));
    let _ = std::io::stderr().write_all(
        format!(
            "\ntests/slurm.rs: local run {local_s:.1} s; array job {cluster_s:.1} s from \
             submission (requeue to end {:.1} s)\n",
            requeued.elapsed().as_secs_f64()
        )
        .as_bytes(),
    );
}
