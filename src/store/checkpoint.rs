//! Trial-state checkpoints: `TRIAL/checkpoints/state-N.bin`, the state after N steps.
//!
//! One file holds everything a trial needs to continue: a TOML header (step, optimiser update
//! counts, stream positions, the byte length of every table at that moment, the recording's
//! last figures and the list of arrays) and the arrays' values (parameters, optimiser moments,
//! the last metrics row, the initial point) as little-endian f64. Layout:
//!
//! `GLSTATE1` | header length (u64 LE) | header | values | CRC-32 of all before (u32 LE)
//!
//! A file is written to a temporary name, synced and renamed, so a kill leaves the old
//! checkpoint whole; a file whose CRC or layout does not check is reported and skipped, and
//! the one before it is used. The newest two are kept.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::backend::HostArray;
use crate::record::{Checkpoint, ImageQuality, ModeCoverage, RecordState};
use crate::train::state::SavedState;

const MAGIC: &[u8; 8] = b"GLSTATE1";
const FORMAT: u32 = 1;
/// State files kept per trial: the newest, and one to fall back on.
const KEEP: usize = 2;

/// Byte length of each table of a trial at a checkpoint, by file name (`metrics.csv`, ...).
pub type TableLengths = BTreeMap<String, u64>;

#[derive(Debug, Serialize, Deserialize)]
struct ModesHeader {
    modes_covered: usize,
    modes_total: usize,
    high_quality: f64,
    reverse_kl: f64,
    /// Absent from state files written before it was measured.
    #[serde(default = "not_measured")]
    sample_motion: f64,
}

fn not_measured() -> f64 {
    f64::NAN
}

#[derive(Debug, Serialize, Deserialize)]
struct ArrayHeader {
    name: String,
    shape: Vec<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: u32,
    step: u64,
    updates_g: i32,
    updates_d: i32,
    wall_time_s: f64,
    /// Stream word positions, as decimal strings (they are u128).
    streams: BTreeMap<String, String>,
    tables: TableLengths,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_modes: Option<ModesHeader>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_quality: Option<ImageQuality>,
    arrays: Vec<ArrayHeader>,
}

const LAST_ROW: &str = "records/last_row";
const INITIAL_POINT: &str = "records/initial_point";
const LAST_EVAL: &str = "records/last_eval";

/// File name of the state after `step` steps (zero-padded so names sort by step).
pub fn state_name(step: u64) -> String {
    format!("state-{step:09}.bin")
}

/// The bytes of a checkpoint with the tables' lengths.
pub fn encode(c: &Checkpoint, tables: &TableLengths) -> anyhow::Result<Vec<u8>> {
    let mut arrays: Vec<&HostArray> = c.trainer.arrays.iter().collect();
    let last_row = HostArray {
        name: LAST_ROW.into(),
        shape: vec![c.records.last_row.len()],
        values: c.records.last_row.clone(),
    };
    arrays.push(&last_row);
    let initial = c.records.initial_point.as_ref().map(|p| HostArray {
        name: INITIAL_POINT.into(),
        shape: vec![p.len()],
        values: p.clone(),
    });
    arrays.extend(initial.as_ref());
    let last_eval = c.records.last_eval.as_ref().map(|p| HostArray {
        name: LAST_EVAL.into(),
        shape: vec![p.len()],
        values: p.clone(),
    });
    arrays.extend(last_eval.as_ref());
    let header = Header {
        format: FORMAT,
        step: c.trainer.step,
        updates_g: c.trainer.updates_g,
        updates_d: c.trainer.updates_d,
        wall_time_s: c.records.wall_time_s,
        streams: c
            .trainer
            .streams
            .iter()
            .map(|(n, p)| (n.clone(), p.to_string()))
            .collect(),
        tables: tables.clone(),
        last_modes: c.records.last_modes.map(|m| ModesHeader {
            modes_covered: m.modes_covered,
            modes_total: m.modes_total,
            high_quality: m.high_quality,
            reverse_kl: m.reverse_kl,
            sample_motion: m.sample_motion,
        }),
        last_quality: c.records.last_quality,
        arrays: arrays
            .iter()
            .map(|a| ArrayHeader {
                name: a.name.clone(),
                shape: a.shape.clone(),
            })
            .collect(),
    };
    let text = toml::to_string(&header).context("cannot serialise the checkpoint header")?;
    let values: usize = arrays.iter().map(|a| a.values.len()).sum();
    let mut out = Vec::with_capacity(8 + 8 + text.len() + 8 * values + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    for a in arrays {
        for v in &a.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A checkpoint and its tables' lengths from the bytes of a state file; an error says what
/// does not check.
pub fn decode(bytes: &[u8]) -> anyhow::Result<(Checkpoint, TableLengths)> {
    if bytes.len() < 8 + 8 + 4 || &bytes[..8] != MAGIC {
        anyhow::bail!("not a ganlab state file (no `GLSTATE1` at its start)");
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != stored {
        anyhow::bail!("its CRC does not match its contents (truncated or damaged)");
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&body[8..16]);
    let len = usize::try_from(u64::from_le_bytes(len)).context("header length")?;
    let text = body
        .get(16..16 + len)
        .context("the header runs past the end")?;
    let text = std::str::from_utf8(text).context("the header is not UTF-8")?;
    let h: Header = toml::from_str(text).map_err(|e| anyhow::anyhow!("header: {e}"))?;
    if h.format != FORMAT {
        anyhow::bail!("format {} (this ganlab reads format {FORMAT})", h.format);
    }
    let mut values = body[16 + len..].chunks_exact(8).map(|b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        f64::from_le_bytes(a)
    });
    let total: usize = h
        .arrays
        .iter()
        .map(|a| a.shape.iter().product::<usize>())
        .sum();
    if body.len() - 16 - len != 8 * total {
        anyhow::bail!(
            "its arrays hold {} bytes, the header lists {}",
            body.len() - 16 - len,
            8 * total
        );
    }
    let mut arrays = Vec::with_capacity(h.arrays.len());
    for a in h.arrays {
        let n: usize = a.shape.iter().product();
        arrays.push(HostArray {
            name: a.name,
            shape: a.shape,
            values: values.by_ref().take(n).collect(),
        });
    }
    let take = |arrays: &mut Vec<HostArray>, name: &str| {
        arrays
            .iter()
            .position(|a| a.name == name)
            .map(|i| arrays.remove(i).values)
    };
    let last_row = take(&mut arrays, LAST_ROW).unwrap_or_default();
    let initial_point = take(&mut arrays, INITIAL_POINT);
    let last_eval = take(&mut arrays, LAST_EVAL);
    let streams = h
        .streams
        .into_iter()
        .map(|(n, p)| {
            p.parse::<u128>()
                .map(|p| (n.clone(), p))
                .map_err(|_| anyhow::anyhow!("stream `{n}`: position `{p}` is not a number"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let checkpoint = Checkpoint {
        trainer: SavedState {
            step: h.step,
            updates_g: h.updates_g,
            updates_d: h.updates_d,
            streams,
            arrays,
        },
        records: RecordState {
            last_row,
            last_modes: h.last_modes.map(|m| ModeCoverage {
                modes_covered: m.modes_covered,
                modes_total: m.modes_total,
                high_quality: m.high_quality,
                reverse_kl: m.reverse_kl,
                sample_motion: m.sample_motion,
            }),
            last_quality: h.last_quality,
            wall_time_s: h.wall_time_s,
            initial_point,
            last_eval,
        },
    };
    Ok((checkpoint, h.tables))
}

/// The state files of a trial folder: (step, path), newest first.
pub fn list(trial: &Path) -> Vec<(u64, PathBuf)> {
    let mut out = super::files_by_step(trial, "state-", ".bin");
    out.reverse();
    out
}

/// Writes the checkpoint of `step` atomically and removes all but the newest [`KEEP`].
pub fn save(trial: &Path, c: &Checkpoint, tables: &TableLengths) -> anyhow::Result<()> {
    let dir = trial.join("checkpoints");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let bytes = encode(c, tables)?;
    super::write_atomic_at(&dir.join(state_name(c.trainer.step)), &bytes, "checkpoint")?;
    for (_, old) in list(trial).into_iter().skip(KEEP) {
        fs::remove_file(&old).with_context(|| format!("cannot remove {}", old.display()))?;
    }
    Ok(())
}

/// What loading the newest usable checkpoint found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The newest checkpoint that checks, with its tables' lengths and file.
    pub checkpoint: Option<(Checkpoint, TableLengths, PathBuf)>,
    /// One line per state file that did not check, newest first.
    pub rejected: Vec<String>,
}

/// The newest checkpoint of a trial folder that reads back whole.
pub fn load_newest(trial: &Path) -> Loaded {
    let mut loaded = Loaded::default();
    for (_, path) in list(trial) {
        let read = fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|b| decode(&b));
        match read {
            Ok((c, t)) => {
                loaded.checkpoint = Some((c, t, path));
                break;
            }
            Err(e) => loaded.rejected.push(format!("{}: {e:#}", path.display())),
        }
    }
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{CpuF64, CPU};
    use crate::spec::TrialConfig;
    use crate::train::Trainer;

    fn sample() -> (Checkpoint, TableLengths) {
        let mut t = Trainer::<CpuF64>::new(&TrialConfig::default(), CPU).unwrap();
        t.step();
        let c = Checkpoint {
            trainer: t.state.save(t.setup()),
            records: RecordState {
                last_row: vec![1.0, f64::NAN, -0.0, f64::INFINITY],
                last_modes: Some(ModeCoverage {
                    modes_covered: 3,
                    modes_total: 8,
                    high_quality: 12.5,
                    reverse_kl: f64::NAN,
                    sample_motion: 0.25,
                }),
                last_quality: Some(ImageQuality {
                    classes_covered: 9,
                    classes_total: 10,
                    confident_share: 62.5,
                    reverse_kl: 0.125,
                    frechet_distance: 31.75,
                }),
                wall_time_s: 1.25,
                initial_point: Some(vec![0.5; 7]),
                last_eval: Some(vec![-1.5; 6]),
            },
        };
        let tables = TableLengths::from([("metrics.csv".to_string(), 1234u64)]);
        (c, tables)
    }

    fn same_bits(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    #[test]
    fn a_checkpoint_reads_back_bit_for_bit() {
        let (c, tables) = sample();
        let (back, t) = decode(&encode(&c, &tables).unwrap()).unwrap();
        assert_eq!(t, tables);
        assert_eq!(back.trainer.step, c.trainer.step);
        assert_eq!(back.trainer.streams, c.trainer.streams);
        assert_eq!(back.trainer.arrays.len(), c.trainer.arrays.len());
        for (a, b) in back.trainer.arrays.iter().zip(&c.trainer.arrays) {
            assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
            assert!(same_bits(&a.values, &b.values), "{}", a.name);
        }
        assert!(same_bits(&back.records.last_row, &c.records.last_row));
        assert_eq!(back.records.initial_point, c.records.initial_point);
        assert_eq!(back.records.wall_time_s, 1.25);
        let m = back.records.last_modes.unwrap();
        assert_eq!(
            (m.modes_covered, m.modes_total, m.high_quality),
            (3, 8, 12.5)
        );
        assert!(m.reverse_kl.is_nan());
        assert_eq!(m.sample_motion, 0.25);
        assert_eq!(back.records.last_eval, c.records.last_eval);
        assert_eq!(back.records.last_quality, c.records.last_quality);
    }

    #[test]
    fn a_damaged_or_truncated_checkpoint_is_refused_with_its_reason() {
        let (c, tables) = sample();
        let bytes = encode(&c, &tables).unwrap();
        let mut flipped = bytes.clone();
        flipped[bytes.len() - 20] ^= 1;
        let e = decode(&flipped).unwrap_err();
        assert!(format!("{e}").contains("CRC"), "{e}");
        let e = decode(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(format!("{e}").contains("CRC"), "{e}");
        let e = decode(b"not a state file at all").unwrap_err();
        assert!(format!("{e}").contains("GLSTATE1"), "{e}");
    }

    #[test]
    fn the_newest_checkpoint_that_checks_is_loaded_and_two_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut c, tables) = sample();
        for step in [10, 20, 30] {
            c.trainer.step = step;
            save(tmp.path(), &c, &tables).unwrap();
        }
        let steps: Vec<u64> = list(tmp.path()).iter().map(|x| x.0).collect();
        assert_eq!(steps, [30, 20]);
        let newest = tmp.path().join("checkpoints").join(state_name(30));
        std::fs::write(&newest, b"GLSTATE1 but cut").unwrap();
        let loaded = load_newest(tmp.path());
        assert_eq!(loaded.checkpoint.unwrap().0.trainer.step, 20);
        assert_eq!(loaded.rejected.len(), 1);
        assert!(loaded.rejected[0].contains("state-000000030.bin"));
    }
}
