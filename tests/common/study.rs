//! Running the `ganlab` binary on a study and reading its folder back, to compare two runs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

/// The cache folder of the tests' runs (image classifiers), under cargo's scratch folder
/// rather than the user's own cache.
pub const TEST_CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/ganlab-cache");

/// Runs the binary with `args` and extra environment variables.
pub fn ganlab_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ganlab"));
    c.args(args)
        .env_remove("GANLAB_FAULT")
        .env("GANLAB_CACHE", TEST_CACHE);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the binary runs")
}

/// Its standard output and error.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `ganlab run FILE --out OUT --quiet` plus `extra`, with `env`.
pub fn run_study(file: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    ganlab_env(&args, env)
}

/// A CSV table without its `wall_time_s` column, as CSV bytes.
pub fn csv_without_time(bytes: &[u8]) -> Vec<u8> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut keep: Option<Vec<usize>> = None;
    for rec in r.records() {
        let rec = rec.expect("a CSV record");
        let k = keep.get_or_insert_with(|| {
            (0..rec.len())
                .filter(|&i| &rec[i] != "wall_time_s")
                .collect()
        });
        w.write_record(k.iter().map(|&i| &rec[i])).unwrap();
    }
    w.into_inner().unwrap()
}

/// Every table (`*.csv`, wall time dropped) and parameter checkpoint (`*.npy`) of a study
/// folder, by path relative to it; the report folder is left out.
pub fn study_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if p.is_dir() {
                if rel != "report" {
                    walk(root, &p, files);
                }
            } else if rel.ends_with(".csv") {
                files.insert(rel, csv_without_time(&fs::read(&p).unwrap()));
            } else if rel.ends_with(".npy") {
                files.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(out, out, &mut files);
    files
}

/// Asserts that two studies' files are identical, naming the first file and line that differ.
pub fn assert_same_files(want: &BTreeMap<String, Vec<u8>>, got: &BTreeMap<String, Vec<u8>>) {
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(want), names(got), "the studies hold different files");
    for (name, w) in want {
        let g = &got[name];
        if w != g {
            let (ws, gs) = (String::from_utf8_lossy(w), String::from_utf8_lossy(g));
            let line = ws
                .lines()
                .zip(gs.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(ws.lines().count().min(gs.lines().count()));
            panic!(
                "{name} differs at line {}:\n want {:?}\n got  {:?}\n({} vs {} lines)",
                line + 1,
                ws.lines().nth(line),
                gs.lines().nth(line),
                ws.lines().count(),
                gs.lines().count()
            );
        }
    }
}
