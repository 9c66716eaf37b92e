//! The `ganlab` command line. Every subcommand and flag is documented here, in one place.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use ganlab::spec::{self, catalogue::CATALOGUE, Precision};
use ganlab::study::{self, RunOptions};

// Training allocates and frees the same large buffers every step; glibc returns them to the
// kernel each time (page faults dominated profiles), mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ganlab",
    version,
    about = "A workbench for studying the training stability of GANs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Expand, train and record a whole study. Finished trials already under the output
    /// folder are skipped; unfinished ones resume from their last checkpoint.
    Run {
        /// The experiment file (TOML).
        file: PathBuf,
        /// Study folder; default notebooks-data/STUDY.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Trials run at once; results do not depend on it.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Hide the progress bars.
        #[arg(long)]
        quiet: bool,
        /// Start afresh the trials recorded with a configuration that differs from the file's
        /// (without it, such a folder is refused, naming the keys that differ).
        #[arg(long)]
        restart: bool,
        /// Run only these trials, beside other processes running other trials of the same
        /// study folder (a Slurm array task runs `--trial $SLURM_ARRAY_TASK_ID`): indices as
        /// `ganlab validate` numbers them (from 0), ranges `A-B`, or trial names, separated by
        /// commas. The report is made by the run that finds every trial ended.
        #[arg(long, value_name = "LIST")]
        trial: Option<String>,
    },
    /// The state of every trial of a study folder: done, diverged, failed, interrupted,
    /// running (on which host, in which Slurm job), or not started; for a local study as for
    /// one run by Slurm array tasks.
    Status {
        /// The study folder (holding trials.csv).
        dir: PathBuf,
    },
    /// Write a Slurm array job for the study, one trial per array task (only the trials not
    /// yet finished), and with --submit submit it through sbatch. Tasks ask for SIGUSR1
    /// before their time limit, save their trial's state and requeue themselves; a requeued
    /// or preempted task resumes its trial from its checkpoint. Resources come from these
    /// flags, else from the file's `[slurm]` section, else Slurm's defaults.
    Slurm {
        /// The experiment file (TOML).
        file: PathBuf,
        /// Study folder; default notebooks-data/STUDY. The script and the tasks' logs go to
        /// its `slurm/` folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Resources of each task: these flags override the file's `[slurm]` section.
        #[command(flatten)]
        flags: ganlab::slurm::SlurmSettings,
        /// Submit the script with sbatch and print the job id.
        #[arg(long)]
        submit: bool,
    },
    /// Re-render the report of a study folder (the folder holding trials.csv) from its
    /// recorded tables: summary.csv, comparison tables, figures, index.html, and Parquet
    /// copies of the per-step tables in the study folder.
    Report {
        /// The study folder.
        dir: PathBuf,
        /// Report folder; default reports/STUDY beside notebooks-data/STUDY, else DIR/report.
        #[arg(long)]
        to: Option<PathBuf>,
        /// Keep the report live while the study runs: render it again every `--every`
        /// seconds (the open page reloads itself) until every trial has its final result or
        /// the run writing the study is gone (a study submitted with `ganlab slurm` is
        /// watched until its trials end: its tasks may wait in the queue).
        #[arg(long)]
        watch: bool,
        /// Seconds between renders with --watch.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86400))]
        every: u64,
    },
    /// One report comparing the trials of several study folders (this week's variant against
    /// last week's, say): keyed by `study` and by every key swept in any of them; a study
    /// that did not sweep a key contributes the value its trials ran with. The study folders
    /// are only read.
    Compare {
        /// Two or more study folders (each holding trials.csv).
        #[arg(required = true, num_args = 2..)]
        dirs: Vec<PathBuf>,
        /// Report folder (new, empty, or a report ganlab made).
        #[arg(long)]
        to: PathBuf,
    },
    /// Probe a trial again from its checkpoints (TRIAL/checkpoints/step-N.npy): the spectrum
    /// at one step (default: the last checkpoint) into TRIAL/probes/step-N/eigen.csv, or the
    /// path-angle between two checkpoints into TRIAL/probes/path-A-B/path_angle.csv.
    Probe {
        /// The trial folder (STUDY/TRIAL).
        trial: PathBuf,
        /// Step of the checkpoint to probe.
        #[arg(long)]
        step: Option<u64>,
        /// Also write the whole game Jacobian as jacobian.npy (row-major n x n, f64).
        #[arg(long)]
        matrix: bool,
        /// Path-angle from the checkpoint of step FROM to that of step TO instead.
        #[arg(long, num_args = 2, value_names = ["FROM", "TO"])]
        path: Option<Vec<u64>>,
        /// Points of the path-angle profile (alpha from -0.1 to 1.1).
        #[arg(long, default_value_t = 25)]
        points: usize,
    },
    /// Check an experiment file and print the trials it expands to; writes nothing.
    Validate {
        /// The experiment file (TOML).
        file: PathBuf,
    },
    /// List the datasets, models, losses, regularisers, optimisers and update schemes.
    List,
    /// Train (or read from the cache) the classifier that measures image sample quality, for
    /// every labelled image data set the experiment file names, and print its held-out
    /// accuracy and the folder that keeps it (`ganlab run` does this itself when needed).
    Classifier {
        /// The experiment file (TOML).
        file: PathBuf,
    },
    /// Measure training steps per second on the reference shapes (ring-8, non-saturating,
    /// MLP 2 x WIDTH, Adam, z dim 2, gradient norms every step).
    Bench {
        /// Hidden width; default: both reference shapes (128 / batch 512 and 32 / batch 64).
        #[arg(long)]
        width: Option<usize>,
        /// Batch size (with --width).
        #[arg(long, default_value_t = 512)]
        batch: usize,
        /// Timed steps per shape.
        #[arg(long, default_value_t = 500)]
        steps: u64,
        /// Use f64 instead of f32.
        #[arg(long)]
        f64: bool,
        /// Backend: `cpu` (Flex in f32, NdArray in f64), `ndarray`, `cuda` (needs a build
        /// with --features cuda) or `wgpu` (f32; needs a build with --features wgpu).
        #[arg(long, default_value = "cpu", value_parser = ["cpu", "ndarray", "cuda", "wgpu"])]
        backend: String,
        /// Time the full game-Jacobian spectrum instead (ring-8, MLP 2 x WIDTH tanh, f64,
        /// probe batch 256); default widths 16, 32 and 64.
        #[arg(long)]
        spectrum: bool,
        /// With --spectrum: time the top K eigenvalues by Arnoldi instead of the full spectrum.
        #[arg(long)]
        arnoldi: Option<usize>,
        /// With --spectrum: threads of the dense eigenvalue solvers, as `probe.eigen_threads`
        /// sets them (default: 2 for OpenBLAS, 1 for faer).
        #[arg(long, value_name = "THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
        eigen_threads: Option<u16>,
        /// Time `ganlab report` on a synthetic study of TRIALS trials x 5000 recorded steps
        /// (ring-8 tables with probes every 500 steps) written to a temporary folder.
        #[arg(long, value_name = "TRIALS")]
        report: Option<usize>,
        /// Time saving and loading a trial-state checkpoint of the quickstart's models
        /// (MLP 2 x 128, Adam, f32), median of 20.
        #[arg(long)]
        checkpoint: bool,
        /// Time DCGAN training steps instead: 28 x 28 grey images, z dim 100, width 64, Adam,
        /// batch --batch (64 unless given), with LOSS `non_saturating` or `wgan_gp` (as
        /// tools/pytorch_dcgan.py does in PyTorch).
        #[arg(long, value_name = "LOSS", value_parser = ["non_saturating", "wgan_gp"])]
        dcgan: Option<String>,
        /// Time TRIALS seeds of the MLP shape (--width, 32 unless given; --batch, 64 unless
        /// given; --steps each) one at a time on --jobs threads, then batched as --jobs groups
        /// (`[study] batch_trials`).
        #[arg(long, value_name = "TRIALS")]
        trials: Option<usize>,
        /// Threads (and groups) for --trials.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// The GPU suite of issue 17 on --backend (cuda or wgpu; runs on the CPU too): the
        /// ring-8 MLP 2x128 at batch 512 and 4096, the DCGAN 64x64 at batch 64 and 256, and
        /// 8, 64 and 256 seeds of the MLP 2x32 at batch 64 one at a time and batched
        /// (`tools/pytorch_gpu_suite.sh` runs the PyTorch peers).
        #[arg(long)]
        gpu: bool,
    },
}

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e`, the same in mimalloc 2 and
/// 3; the Rust bindings do not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Never hand freed pages back to the kernel: a step frees and allocates the same large
    // buffers again within milliseconds, and by default mimalloc returned some of them and
    // took page faults to get them back (DCGAN 28x28 on 2 cores: 5.2-5.7 steps/s by default,
    // 6.0-6.1 without purging). The cost: a process keeps its peak memory until it exits.
    // SAFETY: sets an integer option; mimalloc reads it when it would purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // Output piped into a program that stops reading (`ganlab list | head`) ends ganlab
    // quietly, as it ends `cat`: Rust ignores SIGPIPE, and the next print would panic.
    // SAFETY: restores the default action of one signal, before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Classifier { file } => {
            let study = spec::load(&file)?;
            let sets = ganlab::quality::measured_image_data(study.trials.iter().map(|t| &t.config));
            if sets.is_empty() {
                println!("{}: no trial measures image quality", file.display());
            }
            for d in sets {
                match ganlab::quality::cache::obtain(&d)? {
                    Some(c) => {
                        let r = &c.report;
                        println!(
                            "{:?} {}x{}x{}: {} classes, held-out accuracy {:.2} % on {} images \
                             (trained on {} images, {} steps, {:.0} s); Fréchet distance of \
                             training to held-out images {:.3}",
                            d.source,
                            d.size,
                            d.size,
                            d.channels,
                            r.classes,
                            100.0 * r.test_accuracy,
                            r.test_images,
                            r.train_images,
                            r.steps,
                            r.seconds,
                            r.frechet_floor
                        );
                    }
                    None => println!("{:?} {}: no class labels, no classifier", d.source, d.path),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { dir } => {
            let states = ganlab::trial_states::read(&dir)?;
            print!("{}", ganlab::trial_states::render(&states));
            Ok(ExitCode::SUCCESS)
        }
        Command::Slurm {
            file,
            out,
            flags,
            submit,
        } => {
            let study = spec::load(&file)?;
            let out = out.unwrap_or_else(|| study::default_out(&study.name));
            let settings = study.slurm.overridden_by(&flags);
            settings.check().map_err(|(k, m)| match flags.check() {
                Err((flag, _)) if flag == k => anyhow::anyhow!("--{}: {m}", k.replace('_', "-")),
                _ => anyhow::anyhow!(
                    "{}: key `slurm.{k}`, with the flags given: {m}",
                    file.display()
                ),
            })?;
            let Some(job) = ganlab::slurm::write_job(&study, &out, &settings)? else {
                println!(
                    "study `{}` in {}: every trial is finished; nothing to submit",
                    study.name,
                    out.display()
                );
                return Ok(ExitCode::SUCCESS);
            };
            println!(
                "{}: an array job of {} task(s) (trials {}) of study `{}`",
                job.path.display(),
                job.tasks,
                job.array,
                study.name
            );
            if submit {
                let id = ganlab::slurm::submit(&job.path)?;
                println!(
                    "submitted: job {id}; follow it with `ganlab status {}`, logs in {}",
                    out.display(),
                    out.join(ganlab::slurm::SLURM_DIR).display()
                );
            } else {
                println!("submit it with: sbatch {}", job.path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { file } => {
            let study = spec::load(&file)?;
            println!(
                "{}: valid; study `{}`, {} trial(s)",
                file.display(),
                study.name,
                study.trials.len()
            );
            for t in &study.trials {
                let values: Vec<String> = study
                    .swept_keys
                    .iter()
                    .zip(&t.swept)
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                println!("  {}  {}", t.name, values.join(", "));
            }
            if study.batch_trials {
                let all: Vec<usize> = (0..study.trials.len()).collect();
                let groups = ganlab::batch::groups(&study, &all, 1);
                let batched = groups.iter().filter(|g| g.len() > 1).count();
                println!(
                    "batch_trials: {} group(s) of trials trained as one model, {} trial(s) alone",
                    batched,
                    groups.len() - batched
                );
                for (name, why) in ganlab::batch::unbatched(&study) {
                    println!("  {name} runs alone: {why}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            file,
            out,
            jobs,
            quiet,
            restart,
            trial,
        } => {
            if jobs == 0 {
                anyhow::bail!("--jobs must be at least 1");
            }
            let max = study::max_jobs();
            if jobs > max {
                eprintln!("note: --jobs {jobs} runs {max} trials at once (4 per core)");
            }
            let study = spec::load(&file)?;
            let out = out.unwrap_or_else(|| study::default_out(&study.name));
            let only = trial
                .as_deref()
                .map(|t| study::select_trials(&study, t))
                .transpose()?;
            let hold = match only {
                Some(_) => ganlab::store::lock::Hold::Part,
                None => ganlab::store::lock::Hold::Whole,
            };
            let opts = RunOptions {
                out: out.clone(),
                jobs,
                progress: !quiet,
                restart,
                only,
            };
            // Before anything is written: a GPU study on a machine that cannot run it.
            let selected: Vec<usize> = match &opts.only {
                Some(only) => only.clone(),
                None => (0..study.trials.len()).collect(),
            };
            let uses = |kind| {
                selected
                    .iter()
                    .any(|&i| study.trials[i].config.backend == kind)
            };
            if uses(ganlab::spec::BackendKind::Cuda) {
                ganlab::backend::check_cuda()?;
            }
            if uses(ganlab::spec::BackendKind::Wgpu) {
                ganlab::backend::check_wgpu()?;
            }
            ganlab::interrupt::install()?;
            // Held until the report is written too.
            let lock = study::open(&out, hold)?;
            if let Some(note) = &lock.took_over {
                eprintln!("note: {}: {note}", out.display());
            }
            let s = study::run(&study, &opts, &lock)?;
            println!(
                "study `{}` in {}: {} trial(s) ran ({} done, {} diverged, {} failed), {} already finished",
                study.name,
                out.display(),
                s.ran,
                s.done,
                s.diverged,
                s.failed.len(),
                s.skipped
            );
            for (name, step) in &s.resumed {
                println!("resumed: {name} from its checkpoint at step {step}");
            }
            for (name, note) in &s.notes {
                eprintln!("note: {name}: {note}");
            }
            for (name, err) in &s.failed {
                eprintln!("failed: {name}: {err}");
            }
            for (name, holder) in &s.busy {
                eprintln!("left alone: {name}: another process runs it ({holder})");
            }
            if s.interrupted + s.not_started > 0 {
                eprintln!(
                    "interrupted: {} trial(s) saved their state and {} did not start; run the \
                     same command again to resume them",
                    s.interrupted, s.not_started
                );
                return Ok(ExitCode::from(ganlab::interrupt::exit_status()));
            }
            // The study-wide report waits for the last trial, whichever process ends it;
            // processes that end together take turns (held until the report is written), so
            // two renders never share the report's staging folder.
            let part = hold == ganlab::store::lock::Hold::Part;
            let _turn = part
                .then(|| ganlab::store::lock::MergeLock::wait(&out))
                .transpose()?;
            if part && !study::all_trials_ended(&study, &out) {
                println!(
                    "the report waits for the study's other trials (`ganlab status {}`)",
                    out.display()
                );
                return Ok(if s.failed.is_empty() && s.busy.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            // The trials are recorded whatever happens to the report; `ganlab report` can
            // make it again.
            let report_dir = ganlab::report::default_dir(&out);
            let reported = match ganlab::report::make(&out, &report_dir) {
                Ok(r) => {
                    println!(
                        "report: {} ({} figures); Parquet tables in {}",
                        r.dir.join("index.html").display(),
                        r.figures,
                        out.display()
                    );
                    for (trial, why) in &r.unreadable {
                        eprintln!("unreadable: {trial}: {why}");
                    }
                    r.unreadable.is_empty()
                }
                Err(e) if s.failed.is_empty() => {
                    eprintln!("error: the trials are recorded but the report failed: {e:#}");
                    false
                }
                Err(e) => {
                    eprintln!("error: the report failed too: {e:#}");
                    false
                }
            };
            Ok(if s.failed.is_empty() && s.busy.is_empty() && reported {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Report {
            dir,
            to,
            watch,
            every,
        } => {
            let to = to.unwrap_or_else(|| ganlab::report::default_dir(&dir));
            if watch {
                return watch_report(&dir, &to, every);
            }
            let r = ganlab::report::make(&dir, &to)?;
            println!(
                "report of {} trial(s): {} ({} figures); Parquet tables in {}",
                r.trials,
                r.dir.join("index.html").display(),
                r.figures,
                dir.display()
            );
            for (trial, why) in &r.unreadable {
                eprintln!("unreadable: {trial}: {why}");
            }
            if !r.unreadable.is_empty() {
                eprintln!(
                    "the report leaves out {} trial(s) whose tables cannot be read",
                    r.unreadable.len()
                );
                return Ok(ExitCode::from(1));
            }
            if !r.unfinished.is_empty() {
                println!(
                    "unfinished trial(s) ({}): {}",
                    r.unfinished.len(),
                    r.unfinished.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare { dirs, to } => {
            let r = ganlab::report::compare(&dirs, &to)?;
            println!(
                "comparison of {} trial(s) from {} studies: {} ({} figures)",
                r.trials,
                dirs.len(),
                r.dir.join("index.html").display(),
                r.figures
            );
            for (trial, why) in &r.unreadable {
                eprintln!("unreadable: {trial}: {why}");
            }
            Ok(if r.unreadable.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Probe {
            trial,
            step,
            matrix,
            path,
            points,
        } => {
            let saved = ganlab::saved_trial::SavedTrial::open(&trial)?;
            // A GPU trial whose probes run on its GPU: a machine without one is refused here.
            match saved.setup.field.on {
                ganlab::probe::field::ProbeOn::Cuda => ganlab::backend::check_cuda()?,
                ganlab::probe::field::ProbeOn::Wgpu => ganlab::backend::check_wgpu()?,
                ganlab::probe::field::ProbeOn::Cpu => {}
            }
            if let Some(p) = path {
                if points < 2 {
                    anyhow::bail!("--points must be at least 2");
                }
                let file = saved.write_path(p[0], p[1], points)?;
                println!(
                    "path-angle from step {} to step {}: {}",
                    p[0],
                    p[1],
                    file.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let (s, r, dir) = saved.write_probe(step, matrix)?;
            let f = &r.figures;
            println!(
                "step {s}: {} eigenvalues of J ({}; {} converged), max re {}, min re {},                  max |im|/|re| {}, unstable fraction {}, spectral radius of I - H J {}",
                r.game.len(),
                r.game_method,
                r.converged,
                f.max_re,
                f.min_re,
                f.max_im_over_re,
                f.unstable_fraction,
                r.gd_radius
            );
            println!("written to {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::List => {
            for s in CATALOGUE {
                println!("{} ({}):", s.title, s.key);
                for (name, what) in s.entries {
                    println!("  {name:<16} {what}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            width,
            batch,
            steps,
            f64,
            backend,
            spectrum,
            arnoldi,
            eigen_threads,
            report,
            checkpoint,
            dcgan,
            trials,
            jobs,
            gpu,
        } => {
            let which = match backend.as_str() {
                "ndarray" => ganlab::bench::BenchBackend::Ndarray,
                "cuda" => ganlab::bench::BenchBackend::Cuda,
                "wgpu" => ganlab::bench::BenchBackend::Wgpu,
                _ => ganlab::bench::BenchBackend::Cpu,
            };
            if which == ganlab::bench::BenchBackend::Cuda {
                ganlab::backend::check_cuda()?;
            }
            if which == ganlab::bench::BenchBackend::Wgpu {
                ganlab::backend::check_wgpu()?;
            }
            if checkpoint {
                let c = ganlab::bench::checkpoint_timing(20)?;
                println!(
                    "checkpoint of {} parameters (Adam, f32): {} bytes, save {:.2} ms, load {:.2} ms",
                    c.params,
                    c.bytes,
                    1e3 * c.save_s,
                    1e3 * c.load_s
                );
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(loss) = dcgan {
                let l = match loss.as_str() {
                    "wgan_gp" => ganlab::spec::Loss::WganGp,
                    _ => ganlab::spec::Loss::NonSaturating,
                };
                // --batch defaults to the MLP shapes' 512; the DCGAN reference is 64.
                let batch = if batch == 512 { 64 } else { batch };
                let sps = ganlab::bench::dcgan_steps_per_second(l, 28, batch, steps, which)?;
                println!("DCGAN 28x28 {loss} batch {batch} f32 {backend}: {sps:.2} steps/s");
                return Ok(ExitCode::SUCCESS);
            }
            if gpu {
                gpu_suite(which, &backend)?;
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(n) = trials {
                let width = width.unwrap_or(32);
                // --batch defaults to the MLP shapes' 512; the batched reference is 64.
                let batch = if batch == 512 { 64 } else { batch };
                let precision = if f64 { Precision::F64 } else { Precision::F32 };
                let shape = ganlab::bench::Shape {
                    width,
                    batch,
                    steps,
                    precision,
                };
                let t = ganlab::bench::batched_timing(shape, n, jobs, which)?;
                println!(
                    "{n} trials x {steps} steps, MLP 2x{width} batch {batch} {precision:?} \
                     {backend}, {jobs} thread(s): one at a time {:.2} s ({:.2} trials/s), \
                     batched {:.2} s ({:.2} trials/s): {:.2}x",
                    t.single_s,
                    n as f64 / t.single_s,
                    t.batched_s,
                    n as f64 / t.batched_s,
                    t.single_s / t.batched_s
                );
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(trials) = report {
                let (secs, figures) = ganlab::bench::report_timing(trials, 5000)?;
                println!("report of {trials} trials x 5000 steps: {secs:.2} s ({figures} figures)");
                return Ok(ExitCode::SUCCESS);
            }
            if let (true, Some(k)) = (spectrum, arnoldi) {
                let widths = width.map(|w| vec![w]).unwrap_or_else(|| vec![16, 32, 64]);
                println!(
                    "game                 params  top_k  seconds  products  product_s  converged"
                );
                for w in widths {
                    let t = ganlab::bench::arnoldi_timing(w, 256, k)?;
                    println!(
                        "MLP 2x{w:<4} tanh f64  {:>7} {k:>6} {:>8.2} {:>9} {:>10.2} {:>10}",
                        t.params, t.seconds, t.products, t.product_seconds, t.converged
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            if spectrum {
                let widths = width.map(|w| vec![w]).unwrap_or_else(|| vec![16, 32, 64]);
                let threads = eigen_threads.map(usize::from);
                println!(
                    "eigenvalues from {LARGE} rows: {}",
                    ganlab::probe::spectrum::large_solver(threads),
                    LARGE = ganlab::probe::spectrum::LARGE_FROM
                );
                println!("game                 params  jacobian_s  eigen_s  total_s  symmetric_s");
                for w in widths {
                    let t = ganlab::probe::spectrum::with_threads(threads, || {
                        ganlab::bench::spectrum_timing(w, 256)
                    })?;
                    println!(
                        "MLP 2x{w:<4} tanh f64  {:>7} {:>11.2} {:>8.2} {:>8.2} {:>12.2}",
                        t.params,
                        t.jacobian_s,
                        t.eigen_s,
                        t.jacobian_s + t.eigen_s,
                        t.symmetric_s
                    );
                }
                println!(
                    "(total: J and its eigenvalues; symmetric: both Hessians' and J's symmetric \
                     part's spectra, which a dense probe adds)"
                );
                return Ok(ExitCode::SUCCESS);
            }
            let precision = if f64 { Precision::F64 } else { Precision::F32 };
            let shapes = match width {
                Some(w) => vec![(w, batch)],
                None => vec![(128, 512), (32, 64)],
            };
            println!("shape                                 steps/s");
            for (width, batch) in shapes {
                let shape = ganlab::bench::Shape {
                    width,
                    batch,
                    steps,
                    precision,
                };
                let sps = ganlab::bench::steps_per_second(shape, which)?;
                println!("MLP 2x{width:<4} batch {batch:<5} {precision:?} {backend:<7} {sps:>9.1}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `ganlab report --watch`: renders the report every `every` seconds while the study runs.
fn watch_report(
    dir: &std::path::Path,
    to: &std::path::Path,
    every: u64,
) -> anyhow::Result<ExitCode> {
    println!(
        "watching {}: the report {} is rendered every {every} s (Ctrl-C stops)",
        dir.display(),
        to.join("index.html").display()
    );
    loop {
        // Asked before rendering: a run gone by then has written all it will, so this render
        // is its final state.
        // A study submitted to Slurm has tasks that wait in the queue or between requeues
        // with no process holding it: it is watched until every trial has ended.
        let writer = ganlab::store::lock::writer_may_be_running(dir)
            || dir
                .join(ganlab::slurm::SLURM_DIR)
                .join("job.sbatch")
                .is_file();
        let r = ganlab::report::make_live(dir, to, Some(every))?;
        let now = ganlab::store::now();
        if r.unfinished.is_empty() {
            println!("{now}: every trial has its final result; the report is complete");
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{now}: {} of {} trial(s) unfinished",
            r.unfinished.len(),
            r.trials
        );
        if !writer {
            println!(
                "no ganlab run is writing {} any more; stopped watching (run it again to \
                 resume the unfinished trials)",
                dir.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_secs(every));
    }
}

/// `ganlab bench --gpu`: issue 17's list of GPU measurements, one line each.
fn gpu_suite(which: ganlab::bench::BenchBackend, backend: &str) -> anyhow::Result<()> {
    use ganlab::bench::{batched_timing, dcgan_steps_per_second, steps_per_second, Shape};
    use ganlab::spec::{Loss, Precision};
    println!("ganlab bench --gpu on {backend} (f32)");
    for batch in [512, 4096] {
        let shape = Shape {
            width: 128,
            batch,
            steps: 200,
            precision: Precision::F32,
        };
        let sps = steps_per_second(shape, which)?;
        println!("ring-8 MLP 2x128 batch {batch:<5} one trial: {sps:>10.1} steps/s");
    }
    for batch in [64, 256] {
        let sps = dcgan_steps_per_second(Loss::NonSaturating, 64, batch, 20, which)?;
        println!("DCGAN 64x64 non_saturating batch {batch:<4} one trial: {sps:>8.2} steps/s");
    }
    for trials in [8, 64, 256] {
        let shape = Shape {
            width: 32,
            batch: 64,
            steps: 100,
            precision: Precision::F32,
        };
        let t = batched_timing(shape, trials, 1, which)?;
        println!(
            "ring-8 MLP 2x32 batch 64, {trials:>3} seeds x 100 steps: one at a time {:.2} s, \
             batched {:.2} s ({:.2}x)",
            t.single_s,
            t.batched_s,
            t.single_s / t.batched_s
        );
    }
    Ok(())
}
