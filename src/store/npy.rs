//! NumPy `.npy` files (format version 1.0, little-endian f64, C order): checkpoints and
//! Jacobian matrices that `numpy.load` reads as they are.

use std::path::Path;

use anyhow::Context;

const MAGIC: &[u8] = b"\x93NUMPY";

/// The bytes of a `.npy` file holding `data` with `shape` (row-major).
pub fn encode(data: &[f64], shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + length (2) + header, padded with spaces and a newline to a
    // multiple of 64 bytes so the data is aligned.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 8 * data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes `data` with `shape` to `path` (through a temporary file and a rename).
pub fn write(path: &Path, data: &[f64], shape: &[usize]) -> anyhow::Result<()> {
    super::write_atomic(path, &encode(data, shape))
}

/// Reads a `.npy` file of little-endian f64 in C order: (shape, data).
pub fn read(path: &Path) -> anyhow::Result<(Vec<usize>, Vec<f64>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode(&bytes).with_context(|| format!("{}: not a ganlab .npy file", path.display()))
}

fn decode(bytes: &[u8]) -> anyhow::Result<(Vec<usize>, Vec<f64>)> {
    anyhow::ensure!(bytes.len() >= 10 && &bytes[..6] == MAGIC, "no .npy magic");
    anyhow::ensure!(bytes[6] == 1, "format version {} (1 is read)", bytes[6]);
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    anyhow::ensure!(bytes.len() >= 10 + len, "truncated header");
    let header = std::str::from_utf8(&bytes[10..10 + len])?;
    anyhow::ensure!(
        header.contains("'descr': '<f8'") && header.contains("'fortran_order': False"),
        "only little-endian f64 in C order is read, the header says {header}"
    );
    let shape_at = header.find("'shape': (").context("no shape")? + "'shape': (".len();
    let shape_end = shape_at + header[shape_at..].find(')').context("no shape")?;
    let shape = header[shape_at..shape_end]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().context("bad shape"))
        .collect::<anyhow::Result<Vec<usize>>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .and_then(|n| n.checked_mul(8))
        .context("shape too large")?;
    let body = &bytes[10 + len..];
    anyhow::ensure!(
        body.len() == n,
        "{} data bytes for shape {shape:?}",
        body.len()
    );
    let data = body
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_aligned_header() {
        let data = [1.0, -2.5, f64::NAN, 4.0, 5.0, 6.0];
        let bytes = encode(&data, &[2, 3]);
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + len) % 64, 0);
        assert!(std::str::from_utf8(&bytes[10..10 + len])
            .unwrap()
            .contains("'shape': (2, 3)"));
        let (shape, back) = decode(&bytes).unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(back[1], -2.5);
        assert!(back[2].is_nan());
        let (shape, _) = decode(&encode(&[1.0], &[1])).unwrap();
        assert_eq!(shape, vec![1]);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(b"not numpy at all").is_err());
    }
}
