//! Sample grids of image trials: a PNG per measurement and an animated GIF of a whole trial.
//!
//! A grid shows the generator's images of the first [`GRID_IMAGES`] evaluation latents (the
//! same z at every measurement, so the frames of a trial show the same samples changing),
//! side by side with a 1-pixel gap, values in [-1, 1] mapped to bytes. Small images are
//! enlarged by whole pixels so a 28 x 28 grid is not a thumbnail.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, ImageFormat, RgbImage, RgbaImage};

use crate::data::images::ImageShape;

/// The animation of a trial's grids, in its `grids` folder.
pub const ANIMATION: &str = "trial.gif";

/// A grid of real images, in a trial's `grids` folder.
pub const REAL: &str = "real.png";

/// The name of the grid of `step` in a trial's `grids` folder.
pub fn grid_name(step: u64) -> String {
    format!("step-{step}.png")
}

/// Images in a grid (8 x 8).
pub const GRID_IMAGES: usize = 64;
/// Frames of an animation are shown this long.
const FRAME_MS: u32 = 300;

/// A grid of the image rows `rows` (row-major, each `shape.len()` values in [-1, 1]) as PNG
/// bytes, `cols` images a row.
pub fn grid_png(rows: &[f64], shape: ImageShape, cols: usize) -> anyhow::Result<Vec<u8>> {
    let img = grid_image(rows, shape, cols);
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)?;
    Ok(out)
}

/// Whole-pixel enlargement that brings an image to at least 48 pixels a side.
fn zoom(size: usize) -> usize {
    48usize.div_ceil(size.max(1)).max(1)
}

fn grid_image(rows: &[f64], shape: ImageShape, cols: usize) -> RgbImage {
    let n = rows.len() / shape.len().max(1);
    let cols = cols.clamp(1, n.max(1));
    let lines = n.div_ceil(cols).max(1);
    let z = zoom(shape.size);
    let cell = shape.size * z + 1;
    let (w, h) = ((cols * cell + 1) as u32, (lines * cell + 1) as u32);
    // A mid-grey frame between the images.
    let mut img = RgbImage::from_pixel(w, h, image::Rgb([128, 128, 128]));
    let hw = shape.size * shape.size;
    let byte = |v: f64| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
    for (k, row) in rows.chunks_exact(shape.len()).enumerate() {
        let (x0, y0) = ((k % cols) * cell + 1, (k / cols) * cell + 1);
        for y in 0..shape.size {
            for x in 0..shape.size {
                let p = y * shape.size + x;
                let rgb = if shape.channels == 3 {
                    [byte(row[p]), byte(row[hw + p]), byte(row[2 * hw + p])]
                } else {
                    [byte(row[p]); 3]
                };
                for dy in 0..z {
                    for dx in 0..z {
                        img.put_pixel(
                            (x0 + x * z + dx) as u32,
                            (y0 + y * z + dy) as u32,
                            image::Rgb(rgb),
                        );
                    }
                }
            }
        }
    }
    img
}

/// The grid files of a trial (`grids/step-N.png`), in step order.
pub fn grid_files(trial: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(trial.join("grids"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter_map(|p| {
                    let step = p
                        .file_name()?
                        .to_str()?
                        .strip_prefix("step-")?
                        .strip_suffix(".png")?
                        .parse()
                        .ok()?;
                    Some((step, p))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// An animated GIF (looping) of PNG frames, in order; frames of another size than the first
/// are skipped.
pub fn animate(frames: &[PathBuf]) -> anyhow::Result<Vec<u8>> {
    let mut decoded: Vec<RgbaImage> = Vec::new();
    for f in frames {
        let img = image::open(f)
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?
            .to_rgba8();
        if decoded
            .first()
            .is_none_or(|first| first.dimensions() == img.dimensions())
        {
            decoded.push(img);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut out, 10);
        enc.set_repeat(Repeat::Infinite)?;
        for img in decoded {
            enc.encode_frame(Frame::from_parts(
                img,
                0,
                0,
                Delay::from_numer_denom_ms(FRAME_MS, 1),
            ))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_decode_as_png_of_the_expected_size_and_pixels() -> anyhow::Result<()> {
        let shape = ImageShape {
            channels: 3,
            size: 4,
        };
        // Image k is uniform: red k/4 scaled, green -1, blue 1.
        let rows: Vec<f64> = (0..6)
            .flat_map(|k| {
                let r = -1.0 + 0.4 * k as f64;
                [vec![r; 16], vec![-1.0; 16], vec![1.0; 16]].concat()
            })
            .collect();
        let png = grid_png(&rows, shape, 4)?;
        let img = image::load_from_memory_with_format(&png, ImageFormat::Png)?.to_rgb8();
        let z = zoom(4);
        let cell = 4 * z + 1;
        assert_eq!(
            img.dimensions(),
            ((4 * cell + 1) as u32, (2 * cell + 1) as u32)
        );
        // Image 5 sits in row 1, column 1; its pixels are (byte(1.0), 0, 255).
        let p = img.get_pixel((cell + 1 + 3) as u32, (cell + 1 + 3) as u32);
        assert_eq!(p.0, [255, 0, 255]);
        // The gap is grey.
        assert_eq!(img.get_pixel(0, 0).0, [128, 128, 128]);
        Ok(())
    }
}
