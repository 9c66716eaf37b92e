//! Reports on study folders whose tables the tests write by hand, with known values.

use std::fs;
use std::path::Path;
use std::process::Command;

use polars::prelude::*;

fn put(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn status(state: &str, seed: u64, steps: u64, diverged_at: Option<u64>) -> String {
    let mut s = format!(
        "status = \"{state}\"\nseed = {seed}\nsteps = {steps}\nwall_time_s = 1.0\n\
         ganlab_version = \"0.1.0\"\nburn_version = \"0.21.0\"\nbackend = \"cpu\"\n\
         precision = \"f64\"\n"
    );
    if let Some(d) = diverged_at {
        s.push_str(&format!("diverged_at = {d}\n"));
    }
    s
}

/// Metrics rows for steps 0..n: loss_d = `loss_d(step)`, a Dirac distance from `d0` to `d1`
/// linearly, constant gradient norms.
fn metrics(
    n: usize,
    loss_d: impl Fn(usize) -> f64,
    d0: f64,
    d1: f64,
    nan_at: Option<usize>,
) -> String {
    let mut m = String::from(
        "step,loss_g,loss_d,d_real,d_fake,grad_norm_g,grad_norm_d,grad_norm_g/theta,grad_norm_d/psi,lr_g,lr_d,dist_to_equilibrium,wall_time_s\n",
    );
    for s in 0..n {
        let d = d0 + (d1 - d0) * s as f64 / (n - 1) as f64;
        let ld = if Some(s) == nan_at {
            "NaN".to_string()
        } else {
            loss_d(s).to_string()
        };
        m.push_str(&format!("{s},0.5,{ld},0.6,0.4,1,2,1,2,0.2,0.2,{d},0.01\n"));
    }
    m
}

const EXPERIMENT: &str =
    "[study]\nname = \"handmade\"\ndescription = \"<script>alert('x')</script> & friends\"\n";

/// Three trials swept over `objective.loss` (one value with markup in it) and seeds:
/// - 000: minimax seed 0, done, loss_d ends at 9, distance 1 -> 0.05 (converged), eigen.csv;
/// - 001: minimax seed 1, done, loss_d ends at 5, distance 1 -> 2 (oscillating), no eigen.csv;
/// - 002: `<b>wgan</b>` seed 0, diverged at step 4 (NaN loss there), no eigen.csv.
fn handmade_study(dir: &Path) {
    put(&dir.join("experiment.toml"), EXPERIMENT);
    put(
        &dir.join("trials.csv"),
        "trial,objective.loss,seed,status,steps,diverged_at,wall_time_s\n\
         000-minimax-0,minimax,0,done,10,,1\n\
         001-minimax-1,minimax,1,done,10,,1\n\
         002-wgan-0,<b>wgan</b>,0,diverged,4,4,1\n",
    );
    let t0 = dir.join("000-minimax-0");
    put(&t0.join("status.toml"), &status("done", 0, 10, None));
    put(
        &t0.join("metrics.csv"),
        &metrics(10, |s| s as f64, 1.0, 0.05, None),
    );
    let mut eigen = String::from("step,matrix,method,index,re,im,residual\n");
    for step in [0, 5, 10] {
        eigen.push_str(&format!(
            "{step},game,dense,0,0.1,-0.5,\n{step},game,dense,1,0.1,0.5,\n"
        ));
    }
    put(&t0.join("eigen.csv"), &eigen);
    put(
        &t0.join("path_angle.csv"),
        "alpha,cosine,norm,norm_g,norm_d\n-0.1,0.5,1,0.5,0.5\n0.5,-0.25,2,1,1\n1.1,0.1,1,0.5,0.5\n",
    );
    let t1 = dir.join("001-minimax-1");
    put(&t1.join("status.toml"), &status("done", 1, 10, None));
    put(
        &t1.join("metrics.csv"),
        &metrics(10, |s| s as f64 * 5.0 / 9.0, 1.0, 2.0, None),
    );
    let t2 = dir.join("002-wgan-0");
    put(&t2.join("status.toml"), &status("diverged", 0, 4, Some(4)));
    put(
        &t2.join("metrics.csv"),
        &metrics(5, |_| 1.0, 1.0, 1.0, Some(4)),
    );
}

fn report(study: &Path, to: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ganlab"))
        .args([
            "report",
            study.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

fn read_csv(path: &Path) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .unwrap()
        .finish()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn f64_at(df: &DataFrame, col: &str, row: usize) -> Option<f64> {
    df.column(col)
        .unwrap_or_else(|_| panic!("no column {col}"))
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .get(row)
}

fn str_at(df: &DataFrame, col: &str, row: usize) -> String {
    let c = df.column(col).unwrap().cast(&DataType::String).unwrap();
    c.str().unwrap().get(row).unwrap_or("").to_string()
}

/// Every `src` and `href` target of the page that is a figure.
fn figure_links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let target = &part[..part.find('"').unwrap()];
            if target.ends_with(".png") || target.ends_with(".svg") {
                out.push(target.to_string());
            }
        }
    }
    out
}

/// Undoes the page's percent-encoding of path segments.
fn decode(url: &str) -> String {
    let b = url.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&url[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn assert_valid_figure(path: &Path) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().unwrap() == "png" {
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
            .unwrap_or_else(|e| panic!("{}: not a PNG: {e}", path.display()));
        assert!(
            img.width() >= 400 && img.height() >= 300,
            "{}",
            path.display()
        );
    } else {
        let text = String::from_utf8(bytes).unwrap();
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{}: not XML: {e}", path.display()));
        assert_eq!(
            doc.root_element().tag_name().name(),
            "svg",
            "{}",
            path.display()
        );
    }
}

#[test]
fn the_summary_holds_the_known_means_outcomes_and_divergence_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study");
    handmade_study(&study);
    let to = tmp.path().join("report");
    let o = report(&study, &to);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let s = read_csv(&to.join("summary.csv"));
    assert_eq!(s.height(), 3);
    let row = |name: &str| (0..3).find(|&r| str_at(&s, "trial", r) == name).unwrap();
    let (a, b, c) = (
        row("000-minimax-0"),
        row("001-minimax-1"),
        row("002-wgan-0"),
    );
    assert_eq!(str_at(&s, "outcome", a), "converged");
    assert_eq!(str_at(&s, "outcome", b), "oscillating");
    assert_eq!(str_at(&s, "outcome", c), "diverged");
    assert_eq!(f64_at(&s, "final_loss_d", a), Some(9.0));
    assert_eq!(f64_at(&s, "final_loss_d", b), Some(5.0));
    assert_eq!(f64_at(&s, "diverged_at", c), Some(4.0));
    assert_eq!(f64_at(&s, "diverged_at", a), None);
    assert!((f64_at(&s, "dist_ratio", a).unwrap() - 0.05).abs() < 1e-12);
    assert_eq!(f64_at(&s, "path_min_cosine", a), Some(-0.25));
    assert_eq!(str_at(&s, "objective.loss", c), "<b>wgan</b>");

    let cmp = read_csv(&to.join("compare-objective.loss.csv"));
    assert_eq!(cmp.height(), 2);
    assert_eq!(str_at(&cmp, "objective.loss", 0), "minimax");
    assert_eq!(f64_at(&cmp, "trials", 0), Some(2.0));
    assert_eq!(f64_at(&cmp, "final_loss_d_mean", 0), Some(7.0));
    assert_eq!(f64_at(&cmp, "final_loss_d_min", 0), Some(5.0));
    assert_eq!(f64_at(&cmp, "final_loss_d_max", 0), Some(9.0));
    assert_eq!(f64_at(&cmp, "converged", 0), Some(1.0));
    assert_eq!(f64_at(&cmp, "oscillating", 0), Some(1.0));
    assert_eq!(f64_at(&cmp, "diverged", 0), Some(0.0));
    assert_eq!(f64_at(&cmp, "diverged_at_mean", 0), None);
    assert_eq!(f64_at(&cmp, "diverged", 1), Some(1.0));
    assert_eq!(f64_at(&cmp, "diverged_at_mean", 1), Some(4.0));
    assert_eq!(f64_at(&cmp, "diverged_at_max", 1), Some(4.0));
}

#[test]
fn every_figure_the_page_names_exists_and_names_are_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study");
    handmade_study(&study);
    let to = tmp.path().join("report");
    let o = report(&study, &to);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = fs::read_to_string(to.join("index.html")).unwrap();

    assert!(
        !html.contains("<script"),
        "markup from the experiment file got through"
    );
    assert!(
        !html.contains("<b>wgan"),
        "markup from trials.csv got through"
    );
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; friends"));
    assert!(html.contains("&lt;b&gt;wgan&lt;/b&gt;"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page needs no network"
    );

    let links = figure_links(&html);
    assert!(
        links.iter().any(|l| l.ends_with("eigenvalues.png")),
        "{links:?}"
    );
    assert!(links.iter().any(|l| l.contains("compare-")), "{links:?}");
    assert!(
        links.iter().any(|l| l.ends_with("path_angle.svg")),
        "{links:?}"
    );
    for l in &links {
        assert!(!l.contains(".."), "{l}");
        assert_valid_figure(&to.join(decode(l)));
    }
    // Trials without eigen tables or that diverged still have their training figures.
    for t in ["001-minimax-1", "002-wgan-0"] {
        assert!(
            links.iter().any(|l| l == &format!("trials/{t}/losses.png")),
            "{t}: {links:?}"
        );
        assert!(!links
            .iter()
            .any(|l| l == &format!("trials/{t}/eigenvalues.png")));
    }

    // Parquet copies: every trial's metrics rows, with the trial column first.
    let f = fs::File::open(study.join("metrics.parquet")).unwrap();
    let m = ParquetReader::new(f).finish().unwrap();
    assert_eq!(m.height(), 10 + 10 + 5);
    let names: Vec<&str> = m.get_column_names().iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names[..5],
        ["study", "trial", "objective.loss", "seed", "step"]
    );
    assert_eq!(m.column("step").unwrap().dtype(), &DataType::Int64);
    assert_eq!(m.column("seed").unwrap().dtype(), &DataType::Int64);
    // Rows group by swept key without trials.csv: 10 + 10 rows of minimax.
    let losses = m.column("objective.loss").unwrap().str().unwrap().clone();
    let minimax = (0..losses.len())
        .filter(|&i| losses.get(i) == Some("minimax"))
        .count();
    assert_eq!(minimax, 20);
    assert_eq!(
        m.column("study").unwrap().str().unwrap().get(0),
        Some("handmade")
    );
    let f = fs::File::open(study.join("eigen.parquet")).unwrap();
    assert_eq!(ParquetReader::new(f).finish().unwrap().height(), 6);
}

#[test]
fn a_running_study_reports_which_trials_are_unfinished() {
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study");
    handmade_study(&study);
    // Trial 001 is still running: its table is still `.partial` and ends mid-line.
    let t1 = study.join("001-minimax-1");
    fs::remove_file(t1.join("metrics.csv")).unwrap();
    let mut partial = metrics(10, |s| s as f64, 1.0, 0.5, None);
    partial.push_str("10,0.5,0.2");
    put(&t1.join("metrics.csv.partial"), &partial);
    put(&t1.join("status.toml"), &status("running", 1, 0, None));
    let to = tmp.path().join("report");
    let o = report(&study, &to);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("unfinished trial(s) (1): 001-minimax-1"));
    let html = fs::read_to_string(to.join("index.html")).unwrap();
    assert!(
        html.contains("This study is not finished: 1 of 3"),
        "{html}"
    );
    let s = read_csv(&to.join("summary.csv"));
    let r = (0..3)
        .find(|&r| str_at(&s, "trial", r) == "001-minimax-1")
        .unwrap();
    assert_eq!(str_at(&s, "outcome", r), "unfinished");
    // The half-written line is dropped: the last complete row is step 9.
    assert_eq!(f64_at(&s, "final_loss_d", r), Some(9.0));
}

#[test]
fn the_report_never_replaces_the_study_or_a_folder_that_is_no_report() {
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study");
    handmade_study(&study);
    for to in [study.clone(), tmp.path().to_path_buf(), study.join(".")] {
        let o = report(&study, &to);
        assert_eq!(o.status.code(), Some(2), "{}", to.display());
        assert!(String::from_utf8_lossy(&o.stderr).contains("would replace the study"));
        assert!(study.join("trials.csv").exists());
    }
    let other = tmp.path().join("notes");
    put(&other.join("mine.txt"), "keep me");
    let o = report(&study, &other);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a ganlab report"));
    assert!(other.join("mine.txt").exists());
    // An earlier report is replaced.
    let to = tmp.path().join("report");
    assert!(report(&study, &to).status.success());
    assert!(report(&study, &to).status.success());
    assert!(to.join("index.html").exists() && !tmp.path().join("report.old").exists());
}

#[test]
fn a_swept_key_named_like_a_summary_column_gets_its_own_column() {
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study");
    handmade_study(&study);
    // The same study as if it had swept `steps` instead of the loss.
    let csv = fs::read_to_string(study.join("trials.csv")).unwrap();
    put(
        &study.join("trials.csv"),
        &csv.replacen("objective.loss", "steps", 1),
    );
    let to = tmp.path().join("report");
    let o = report(&study, &to);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = read_csv(&to.join("summary.csv"));
    assert_eq!(str_at(&s, "swept:steps", 0), "minimax");
    assert_eq!(f64_at(&s, "steps", 0), Some(10.0));
    assert!(to.join("compare-swept_steps.csv").exists());
}

#[test]
fn reporting_a_folder_that_is_no_study_fails_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let o = report(tmp.path(), &tmp.path().join("r"));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no trials.csv here"), "{err}");
    assert!(!tmp.path().join("r").exists());

    // A table that is not numeric names its file and line; its trial is reported unreadable
    // and the report of the others is made (exit code 1).
    let study = tmp.path().join("study");
    handmade_study(&study);
    put(
        &study.join("000-minimax-0/metrics.csv"),
        "step,loss_g\n0,abc\n",
    );
    let o = report(&study, &tmp.path().join("r"));
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("000-minimax-0/metrics.csv:2: column `loss_g`"),
        "{err}"
    );
    assert!(tmp.path().join("r/index.html").exists());
}

#[test]
fn the_same_tables_give_the_same_summary_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study");
    // Long tables, so that polars reads them in several chunks.
    ganlab::bench::write_synthetic_study(&study, 6, 40_000).unwrap();
    let mut seen: Option<Vec<(String, Vec<u8>)>> = None;
    for i in 0..3 {
        let to = tmp.path().join(format!("report{i}"));
        let o = report(&study, &to);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&to)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    fs::read(&p).unwrap(),
                )
            })
            .collect();
        files.sort();
        assert!(files.iter().any(|f| f.0 == "summary.csv"));
        match &seen {
            None => seen = Some(files),
            Some(first) => assert!(first == &files, "report {i} differs from the first"),
        }
    }
}

#[test]
fn an_unreadable_table_is_named_by_file_and_line_and_the_other_trials_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study");
    handmade_study(&study);
    // Trial 0: its final metrics.csv cut in the middle of a line. Trial 1: a word where a
    // number belongs.
    let m0 = study.join("000-minimax-0/metrics.csv");
    let text = fs::read_to_string(&m0).unwrap();
    fs::write(&m0, &text[..text.len() - 7]).unwrap();
    let m1 = study.join("001-minimax-1/metrics.csv");
    let text = fs::read_to_string(&m1).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut f: Vec<&str> = lines[4].split(',').collect();
    f[2] = "oops";
    lines[4] = f.join(",");
    fs::write(&m1, lines.join("\n") + "\n").unwrap();

    let to = tmp.path().join("report");
    let o = report(&study, &to);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("000-minimax-0/metrics.csv:11: the last line is cut short"),
        "{err}"
    );
    assert!(
        err.contains("001-minimax-1/metrics.csv:5: column `loss_d`: `oops`"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("infer_schema"),
        "{err}"
    );
    let s = read_csv(&to.join("summary.csv"));
    let outcome = |trial: &str| {
        let r = (0..s.height())
            .find(|&r| str_at(&s, "trial", r) == trial)
            .unwrap();
        str_at(&s, "outcome", r)
    };
    assert_eq!(outcome("000-minimax-0"), "unreadable");
    assert_eq!(outcome("001-minimax-1"), "unreadable");
    assert_eq!(outcome("002-wgan-0"), "diverged");
    let html = fs::read_to_string(to.join("index.html")).unwrap();
    assert!(html.contains("the last line is cut short"));
}

#[test]
fn compare_makes_one_report_of_several_studies_keyed_by_study() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    handmade_study(&a);
    handmade_study(&b);
    // The second study is last week's: another name, and a config.toml per trial holding the
    // value of a key only the other study swept.
    put(
        &b.join("experiment.toml"),
        "[study]\nname = \"last_week\"\n",
    );
    let csv = fs::read_to_string(a.join("trials.csv"))
        .unwrap()
        .replace("objective.loss,", "train.batch,")
        .replace(",minimax,", ",64,")
        .replace(",<b>wgan</b>,", ",128,");
    put(&b.join("trials.csv"), &csv);
    for t in ["000-minimax-0", "001-minimax-1", "002-wgan-0"] {
        put(
            &b.join(t).join("config.toml"),
            "[objective]\nloss = \"hinge\"\n",
        );
    }
    let to = tmp.path().join("both");
    let o = Command::new(env!("CARGO_BIN_EXE_ganlab"))
        .args([
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = read_csv(&to.join("summary.csv"));
    assert_eq!(summary.height(), 6);
    let names: Vec<&str> = summary
        .get_column_names()
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(
        names[..4],
        ["trial", "study", "objective.loss", "train.batch"]
    );
    let col = |c: &str| -> Vec<String> {
        let s = summary.column(c).unwrap().cast(&DataType::String).unwrap();
        let s = s.str().unwrap();
        (0..s.len())
            .map(|i| s.get(i).unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        col("study"),
        [
            "handmade",
            "handmade",
            "handmade",
            "last_week",
            "last_week",
            "last_week"
        ]
    );
    // The other study's trials ran with the loss their config.toml holds.
    assert_eq!(col("objective.loss")[3..], ["hinge", "hinge", "hinge"]);
    assert_eq!(col("trial")[3], "last_week/000-minimax-0");
    // One comparison table per key, the study first; the study folders were only read.
    let by_study = read_csv(&to.join("compare-study.csv"));
    assert_eq!(by_study.height(), 2);
    assert!(!a.join("report").exists() && !b.join("metrics.parquet").exists());
    let html = fs::read_to_string(to.join("index.html")).unwrap();
    assert!(html.contains("last_week"), "{html}");

    // One folder is not a comparison.
    let o = Command::new(env!("CARGO_BIN_EXE_ganlab"))
        .args(["compare", a.to_str().unwrap(), "--to", to.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// `ganlab run` of a small study, killed after `kill_at` steps when given.
fn small_run(dir: &Path, steps: u64, kill_at: Option<u64>) -> std::process::Output {
    let file = dir.join("live.toml");
    put(
        &file,
        &format!(
            "[study]\nname = \"live\"\n[base]\nsteps = {steps}\n\
             generator = {{ kind = \"mlp\", depth = 1, width = 8 }}\n\
             discriminator = {{ kind = \"mlp\", depth = 1, width = 8 }}\n\
             train = {{ batch = 16 }}\nrecord = {{ modes_every = 100, eval_samples = 64 }}\n\
             [sweep]\nseed = [0, 1]\n"
        ),
    );
    let mut c = Command::new(env!("CARGO_BIN_EXE_ganlab"));
    c.args([
        "run",
        file.to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
        "--quiet",
    ])
    .env_remove("GANLAB_FAULT");
    if let Some(k) = kill_at {
        c.env("GANLAB_FAULT", format!("step:{k}"));
    }
    c.output().unwrap()
}

/// `ganlab report OUT --to TO --watch --every 1`, to its end.
fn watch(out: &Path, to: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ganlab"))
        .args([
            "report",
            out.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
            "--watch",
            "--every",
            "1",
        ])
        .output()
        .unwrap()
}

#[test]
fn watching_a_study_whose_run_is_gone_renders_once_and_stops() {
    let tmp = tempfile::tempdir().unwrap();
    // The run is killed in its first trial: both trials are unfinished and nobody writes.
    let o = small_run(tmp.path(), 50, Some(20));
    assert!(!o.status.success());
    let out = tmp.path().join("out");
    let to = tmp.path().join("live-report");
    let o = watch(&out, &to);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("2 of 2 trial(s) unfinished"), "{text}");
    assert!(text.contains("no ganlab run is writing"), "{text}");
    // The live page reloads itself while trials are unfinished; a plain report does not.
    let html = fs::read_to_string(to.join("index.html")).unwrap();
    assert!(html.contains("http-equiv=\"refresh\" content=\"1\""));
    let o = report(&out, &to);
    assert!(o.status.success());
    let html = fs::read_to_string(to.join("index.html")).unwrap();
    assert!(!html.contains("http-equiv=\"refresh\""));
}

#[test]
fn watching_a_running_study_follows_it_to_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let run = std::thread::spawn(move || small_run(&dir, 3000, None));
    let out = tmp.path().join("out");
    // The watcher starts once the study folder has its trials.csv.
    let start = std::time::Instant::now();
    while !out.join("trials.csv").exists() {
        assert!(
            start.elapsed().as_secs() < 60,
            "the run wrote no trials.csv"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let to = tmp.path().join("live-report");
    let o = watch(&out, &to);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(run.join().unwrap().status.success());
    assert!(o.status.success(), "{text}");
    assert!(text.contains("every trial has its final result"), "{text}");
    let html = fs::read_to_string(to.join("index.html")).unwrap();
    assert!(!html.contains("http-equiv=\"refresh\""));
}

#[test]
fn a_mixture_trial_converges_when_its_samples_settle_whatever_its_gradient_norms_do() {
    // Three ring trials with constant gradient norms (the gradient rule would say `trained`):
    // samples that last moved 0.4 mode radii (converged), 2.5 (still moving: trained), and a
    // settled one that misses a mode (collapsed).
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study");
    put(&study.join("experiment.toml"), EXPERIMENT);
    let mut trials = String::from("trial,seed,status,steps,diverged_at,wall_time_s\n");
    for (i, (motion, covered)) in [(0.4, 8), (2.5, 8), (0.3, 7)].iter().enumerate() {
        let name = format!("00{i}-ring-{i}");
        trials.push_str(&format!("{name},{i},done,10,,1\n"));
        let t = study.join(&name);
        put(&t.join("status.toml"), &status("done", i as u64, 10, None));
        let m = metrics(10, |_| 1.0, 1.0, 1.0, None).replace(",dist_to_equilibrium", ",x");
        put(&t.join("metrics.csv"), &m);
        put(
            &t.join("modes.csv"),
            &format!(
                "step,modes_covered,modes_total,high_quality,reverse_kl,sample_motion\n\
                 0,2,8,1,0.5,NaN\n5,8,8,40,0.1,9.5\n10,{covered},8,50,0.1,{motion}\n"
            ),
        );
    }
    put(&study.join("trials.csv"), &trials);
    let to = tmp.path().join("report");
    let o = report(&study, &to);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = read_csv(&to.join("summary.csv"));
    let outcome = |r: usize| str_at(&s, "outcome", r);
    assert_eq!(
        (outcome(0), outcome(1), outcome(2)),
        ("converged".into(), "trained".into(), "collapsed".into())
    );
    assert_eq!(f64_at(&s, "sample_motion", 0), Some(0.4));
}
