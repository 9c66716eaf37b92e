//! Tabular data: a CSV file with a header row and numeric columns. Its own module, so that the
//! data sets (which load it) and the experiment-file checks (which check it) both use it.

use std::path::Path;

/// Reads the whole file: row-major values and the number of columns. Errors name the file
/// and, where it applies, its line and column.
pub fn load_csv(path: &Path) -> Result<(Vec<f64>, usize), String> {
    let f = path.display();
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("{f}: cannot read the CSV file: {e}"))?;
    let header = reader
        .headers()
        .map_err(|e| format!("{f}:1: bad CSV header: {e}"))?
        .clone();
    let dim = header.len();
    if dim == 0 {
        return Err(format!("{f}: the CSV file has no columns"));
    }
    // A first row of numbers is data, not column names: read as a header it would be lost.
    if header.iter().all(|h| h.trim().parse::<f64>().is_ok()) {
        return Err(format!(
            "{f}:1: the first row holds numbers, not column names; ganlab reads the first row \
             as the header, so add a header row (for example `x0,x1`)"
        ));
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| format!("{f}:{line}: bad CSV row: {e}"))?;
        for (j, field) in record.iter().enumerate() {
            let v: f64 = field.trim().parse().map_err(|_| {
                format!(
                    "{f}:{line}: column {}: `{field}` is not a number (all columns must be \
                     numeric)",
                    j + 1
                )
            })?;
            if !v.is_finite() {
                return Err(format!("{f}:{line}: column {}: value is not finite", j + 1));
            }
            rows.push(v);
        }
    }
    if rows.is_empty() {
        return Err(format!("{f}: the CSV file has a header but no rows"));
    }
    Ok((rows, dim))
}

/// Checks that a file loads, for validation before anything is written.
pub fn check_csv(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!(
            "{} is a folder; `data.path` names a CSV file",
            path.display()
        ));
    }
    if !path.is_file() {
        return Err(format!("the data file {} does not exist", path.display()));
    }
    load_csv(path).map(|_| ())
}
