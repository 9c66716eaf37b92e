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
    /// folder are skipped.
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
    },
    /// Check an experiment file and print the trials it expands to; writes nothing.
    Validate {
        /// The experiment file (TOML).
        file: PathBuf,
    },
    /// List the datasets, models, losses, regularisers, optimisers and update schemes.
    List,
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
        /// Backend: `cpu` (Flex in f32, NdArray in f64), `ndarray`, or `cuda` (needs a build
        /// with --features cuda).
        #[arg(long, default_value = "cpu", value_parser = ["cpu", "ndarray", "cuda"])]
        backend: String,
        /// Time the full game-Jacobian spectrum instead (ring-8, MLP 2 x WIDTH tanh, f64,
        /// probe batch 256); default widths 16, 32 and 64.
        #[arg(long)]
        spectrum: bool,
        /// With --spectrum: time the top K eigenvalues by Arnoldi instead of the full spectrum.
        #[arg(long)]
        arnoldi: Option<usize>,
    },
}

fn main() -> ExitCode {
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
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            file,
            out,
            jobs,
            quiet,
        } => {
            if jobs == 0 {
                anyhow::bail!("--jobs must be at least 1");
            }
            let study = spec::load(&file)?;
            let out = out.unwrap_or_else(|| study::default_out(&study.name));
            let opts = RunOptions {
                out: out.clone(),
                jobs,
                progress: !quiet,
            };
            let s = study::run(&study, &opts)?;
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
            for (name, err) in &s.failed {
                eprintln!("failed: {name}: {err}");
            }
            Ok(if s.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
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
        } => {
            if let (true, Some(k)) = (spectrum, arnoldi) {
                let widths = width.map(|w| vec![w]).unwrap_or_else(|| vec![16, 32, 64]);
                println!("game                 params  top_k  seconds  products  converged");
                for w in widths {
                    let (n, secs, products, converged) = ganlab::bench::arnoldi_timing(w, 256, k)?;
                    println!("MLP 2x{w:<4} tanh f64  {n:>7} {k:>6} {secs:>8.2} {products:>9} {converged:>10}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            if spectrum {
                let widths = width.map(|w| vec![w]).unwrap_or_else(|| vec![16, 32, 64]);
                println!("game                 params  jacobian_s  eigen_s  total_s");
                for w in widths {
                    let t = ganlab::bench::spectrum_timing(w, 256)?;
                    println!(
                        "MLP 2x{w:<4} tanh f64  {:>7} {:>11.2} {:>8.2} {:>8.2}",
                        t.params,
                        t.jacobian_s,
                        t.eigen_s,
                        t.jacobian_s + t.eigen_s
                    );
                }
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
                let which = match backend.as_str() {
                    "ndarray" => ganlab::bench::BenchBackend::Ndarray,
                    "cuda" => ganlab::bench::BenchBackend::Cuda,
                    _ => ganlab::bench::BenchBackend::Cpu,
                };
                let sps = ganlab::bench::steps_per_second(shape, which)?;
                println!("MLP 2x{width:<4} batch {batch:<5} {precision:?} {backend:<7} {sps:>9.1}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
