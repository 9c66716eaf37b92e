//! Tabular data: a CSV file with a header row and numeric columns.

use std::path::Path;

/// Reads the whole file: row-major values and the number of columns.
pub fn load_csv(path: &Path) -> Result<(Vec<f64>, usize), String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("cannot read the CSV file: {e}"))?;
    let dim = reader
        .headers()
        .map_err(|e| format!("bad CSV header: {e}"))?
        .len();
    if dim == 0 {
        return Err("the CSV file has no columns".into());
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("bad CSV row {}: {e}", i + 2))?;
        for (j, field) in record.iter().enumerate() {
            let v: f64 = field.trim().parse().map_err(|_| {
                format!(
                    "line {}, column {}: `{field}` is not a number (all columns must be numeric)",
                    i + 2,
                    j + 1
                )
            })?;
            if !v.is_finite() {
                return Err(format!(
                    "line {}, column {}: value is not finite",
                    i + 2,
                    j + 1
                ));
            }
            rows.push(v);
        }
    }
    if rows.is_empty() {
        return Err("the CSV file has a header but no rows".into());
    }
    Ok((rows, dim))
}

/// Checks that a file loads, for validation before anything is written.
pub fn check_csv(path: &Path) -> Result<(), String> {
    if !path.is_file() {
        return Err(format!("the data file {} does not exist", path.display()));
    }
    load_csv(path).map(|_| ())
}
