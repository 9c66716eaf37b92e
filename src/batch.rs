//! Batched trials in a study (`[study] batch_trials = true`): which trials train together,
//! and the run of one such group. Every member keeps its folder, tables, checkpoints and
//! status exactly as its own run writes them; only the steps are taken for all members at
//! once, as one model (`train::batched`). A member that diverges or finishes leaves the group
//! and the others go on.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::backend::GanBackend;
use crate::record::Checkpoint;
use crate::setup::TrialSetup;
use crate::spec::{BackendKind, Precision, Study, TrialConfig};
use crate::store::{CsvSink, TrialDir, TrialStatus};
use crate::train::batched::{group_key, Group, MAX_GROUP};
use crate::trial::{close_tables, panic_error, settle, TrialOutcome, TrialRun};

/// The trials of `todo` in the groups that run as one model, in study order: trials with the
/// same group key together (at most [`MAX_GROUP`], and split so that `jobs` groups can run at
/// once), a trial that cannot be batched alone. Without `batch_trials`, every trial alone.
pub fn groups(study: &Study, todo: &[usize], jobs: usize) -> Vec<Vec<usize>> {
    if !study.batch_trials {
        return todo.iter().map(|&i| vec![i]).collect();
    }
    let mut keyed: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for &i in todo {
        match group_key(&study.trials[i].config) {
            Ok(key) => match keyed.get(&key) {
                Some(&g) => out[g].push(i),
                None => {
                    keyed.insert(key, out.len());
                    out.push(vec![i]);
                }
            },
            Err(_) => out.push(vec![i]),
        }
    }
    // Split a group into as many parts as there are workers left idle, each at most
    // MAX_GROUP trials (the numbers do not depend on the split).
    let spare = jobs.max(1);
    out.into_iter()
        .flat_map(|g| {
            let parts = g.len().div_ceil(MAX_GROUP).max(spare.min(g.len()));
            let size = g.len().div_ceil(parts.max(1));
            g.chunks(size.max(1))
                .map(<[usize]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Why each trial of a study that asks for batching runs on its own, for `ganlab validate`.
pub fn unbatched(study: &Study) -> Vec<(String, String)> {
    if !study.batch_trials {
        return Vec::new();
    }
    study
        .trials
        .iter()
        .filter_map(|t| group_key(&t.config).err().map(|why| (t.name.clone(), why)))
        .collect()
}

/// Runs the trials `dirs` / `cfgs` (a group of [`groups`]) as one model where they can be:
/// each opened (resumed where it was unless `restart`) as its own run opens it; trials at the
/// same step train together. Returns each trial's status, in order.
pub fn run_group_in_dirs(
    dirs: &[TrialDir],
    cfgs: &[&TrialConfig],
    restart: &[bool],
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<TrialStatus> {
    let n = dirs.len();
    let mut statuses: Vec<TrialStatus> = cfgs.iter().map(|c| TrialStatus::running(c)).collect();
    let mut results: Vec<Option<anyhow::Result<TrialOutcome>>> = (0..n).map(|_| None).collect();
    let mut opened: Vec<(usize, CsvSink, Option<Checkpoint>)> = Vec::new();
    for k in 0..n {
        match crate::trial::open(&dirs[k], cfgs[k], restart[k], &mut statuses[k]) {
            Ok((sink, resume)) => opened.push((k, sink, resume)),
            Err(e) => results[k] = Some(Err(e)),
        }
    }
    if let Some(&(first, ..)) = opened.first() {
        let indices: Vec<usize> = opened.iter().map(|(k, ..)| *k).collect();
        let run = catch_unwind(AssertUnwindSafe(|| {
            let (backend, precision) = (cfgs[first].backend, cfgs[first].precision);
            run_on_backend(backend, precision, cfgs, opened, progress)
        }));
        match run {
            Ok(Ok(outcomes)) => {
                for (k, r) in outcomes {
                    results[k] = Some(r);
                }
            }
            Ok(Err(e)) => {
                let msg = format!("{e:#}");
                for k in indices {
                    results[k] = Some(Err(anyhow::anyhow!("{msg}")));
                }
            }
            Err(p) => {
                let msg = format!("{:#}", panic_error(p));
                for k in indices {
                    results[k] = Some(Err(anyhow::anyhow!("{msg}")));
                }
            }
        }
    }
    statuses
        .into_iter()
        .zip(results)
        .enumerate()
        .map(|(k, (status, r))| {
            let r = r.unwrap_or_else(|| Err(anyhow::anyhow!("the trial did not run")));
            settle(&dirs[k], status, r)
        })
        .collect()
}

type Opened = Vec<(usize, CsvSink, Option<Checkpoint>)>;
type Outcomes = Vec<(usize, anyhow::Result<TrialOutcome>)>;

fn run_on_backend(
    backend: BackendKind,
    precision: Precision,
    cfgs: &[&TrialConfig],
    opened: Opened,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Outcomes> {
    use crate::backend::{CpuF32, CpuF64, NdArrayF32, CPU, CPU_F32};
    match (backend, precision) {
        (BackendKind::Cpu, Precision::F32) => run_group::<CpuF32>(CPU_F32, cfgs, opened, progress),
        (BackendKind::Ndarray, Precision::F32) => {
            run_group::<NdArrayF32>(CPU, cfgs, opened, progress)
        }
        (BackendKind::Cpu | BackendKind::Ndarray, Precision::F64) => {
            run_group::<CpuF64>(CPU, cfgs, opened, progress)
        }
        #[cfg(feature = "cuda")]
        (BackendKind::Cuda, Precision::F32) => {
            run_group::<burn::backend::Autodiff<crate::backend::Cuda<f32>>>(
                crate::backend::CudaDevice::default(),
                cfgs,
                opened,
                progress,
            )
        }
        #[cfg(feature = "cuda")]
        (BackendKind::Cuda, Precision::F64) => {
            run_group::<burn::backend::Autodiff<crate::backend::Cuda<f64>>>(
                crate::backend::CudaDevice::default(),
                cfgs,
                opened,
                progress,
            )
        }
        #[cfg(not(feature = "cuda"))]
        (BackendKind::Cuda, _) => anyhow::bail!("this ganlab was built without the `cuda` feature"),
        #[cfg(feature = "wgpu")]
        (BackendKind::Wgpu, _) => run_group::<burn::backend::Autodiff<crate::backend::Wgpu<f32>>>(
            crate::backend::WgpuDevice::default(),
            cfgs,
            opened,
            progress,
        ),
        #[cfg(not(feature = "wgpu"))]
        (BackendKind::Wgpu, _) => anyhow::bail!("this ganlab was built without the `wgpu` feature"),
    }
}

/// One member of a running group: its trial index, its run and its tables.
struct Member<B: GanBackend> {
    index: usize,
    run: TrialRun<B>,
    sink: CsvSink,
}

fn run_group<B: GanBackend>(
    device: B::Device,
    cfgs: &[&TrialConfig],
    opened: Opened,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Outcomes> {
    let mut outcomes: Outcomes = Vec::new();
    // Trials at the same step train together; a group resumed from checkpoints at different
    // steps runs as several.
    let mut by_step: BTreeMap<u64, Vec<Member<B>>> = BTreeMap::new();
    for (index, mut sink, resume) in opened {
        let started = TrialSetup::new(cfgs[index]).and_then(|setup| {
            TrialRun::<B>::open(setup, device.clone(), &mut sink, resume, progress)
        });
        match started {
            Ok(run) => by_step
                .entry(run.step())
                .or_default()
                .push(Member { index, run, sink }),
            Err(e) => outcomes.push((index, Err(e))),
        }
    }
    for (_, members) in by_step {
        outcomes.extend(lockstep(members, progress)?);
    }
    Ok(outcomes)
}

/// The members' trial states as the group's stacks hold them.
fn trainers<B: GanBackend>(live: &mut [Member<B>]) -> Vec<&mut crate::train::Trainer<B>> {
    live.iter_mut().map(|m| &mut m.run.trainer).collect()
}

/// Trains members that are at the same step together until each has ended.
fn lockstep<B: GanBackend>(
    members: Vec<Member<B>>,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Outcomes> {
    let mut outcomes: Outcomes = Vec::new();
    let mut live: Vec<Member<B>> = Vec::new();
    for m in members {
        if m.run.running() {
            live.push(m);
        } else {
            outcomes.push(finish(m, progress));
        }
    }
    if live.is_empty() {
        return Ok(outcomes);
    }
    let mut group = Group::<B>::new(&trainers(&mut live))?;
    while !live.is_empty() {
        // One answer for the whole group: every member stops at the same step.
        let interrupted = crate::interrupt::requested();
        if live.iter().any(|m| m.run.needs_state_before(interrupted)) {
            group.store(&mut trainers(&mut live));
        }
        let mut failed: Vec<(usize, anyhow::Error)> = Vec::new();
        for (k, m) in live.iter_mut().enumerate() {
            if let Err(e) = m.run.before_step(&mut m.sink, interrupted) {
                failed.push((k, e));
            }
        }
        if interrupted || !failed.is_empty() {
            // The members that go on are restacked from their own states: bring them up to
            // date first (a stop has stored them already).
            if !interrupted {
                group.store(&mut trainers(&mut live));
            }
            live = settle_ended(live, failed, &mut outcomes, progress);
            if live.is_empty() {
                break;
            }
            group = Group::<B>::new(&trainers(&mut live))?;
            continue;
        }
        let stats = group.step(&mut trainers(&mut live));
        if live
            .iter()
            .zip(&stats)
            .any(|(m, s)| m.run.needs_state_after(s))
        {
            group.store(&mut trainers(&mut live));
        }
        for (k, (m, s)) in live.iter_mut().zip(stats).enumerate() {
            if let Err(e) = m.run.after_step(s, &mut m.sink, progress) {
                failed.push((k, e));
            }
        }
        if !failed.is_empty() || live.iter().any(|m| !m.run.running()) {
            // The states were stored after the step (an ending member needs its own).
            group.store(&mut trainers(&mut live));
            live = settle_ended(live, failed, &mut outcomes, progress);
            if !live.is_empty() {
                group = Group::<B>::new(&trainers(&mut live))?;
            }
        }
    }
    Ok(outcomes)
}

/// Ends the members that failed or stopped running; returns those that go on.
fn settle_ended<B: GanBackend>(
    live: Vec<Member<B>>,
    failed: Vec<(usize, anyhow::Error)>,
    outcomes: &mut Outcomes,
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<Member<B>> {
    let mut failed: BTreeMap<usize, anyhow::Error> = failed.into_iter().collect();
    let mut going_on = Vec::new();
    for (k, m) in live.into_iter().enumerate() {
        if let Some(e) = failed.remove(&k) {
            outcomes.push((m.index, Err(e)));
        } else if m.run.running() {
            going_on.push(m);
        } else {
            outcomes.push(finish(m, progress));
        }
    }
    going_on
}

/// A member's end: its final records and its tables closed.
fn finish<B: GanBackend>(
    m: Member<B>,
    progress: &(dyn Fn(u64) + Sync),
) -> (usize, anyhow::Result<TrialOutcome>) {
    let Member {
        index,
        run,
        mut sink,
    } = m;
    let outcome = run.finish(&mut sink, progress).and_then(|o| {
        close_tables(sink, &o)?;
        Ok(o)
    });
    (index, outcome)
}
