//! Image data sets (SPEC section 3.1): MNIST and Fashion-MNIST in IDX format (plain or gzip),
//! any IDX image file, a folder of PNG/JPEG images, and a generated set of shapes for tests.
//!
//! An image is a row of `channels x size x size` values in [-1, 1] (pixel / 127.5 - 1),
//! channel-major (all of channel 0, row by row, then channel 1, ...), which is the layout the
//! convolutional players reshape to `[n, channels, size, size]`. Pixels are kept as bytes and
//! scaled when a batch is drawn: Fashion-MNIST's 60 000 training images are 47 MB as bytes and
//! would be 376 MB as f64. A set is read once per process and shared by every trial that names
//! it.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rand::Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::spec::{ImageData, ImageSource};

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The shape of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageShape {
    pub channels: usize,
    pub size: usize,
}

impl ImageShape {
    /// Values in one image row.
    pub fn len(&self) -> usize {
        self.channels * self.size * self.size
    }
    /// Whether an image holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which part of a data set: the training images, or the held-out ones (IDX `t10k-*` files;
/// the last tenth of a folder, of each class subfolder, or of the generated set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    HeldOut,
}

/// Images as bytes, and their class labels where the set has them.
#[derive(Debug)]
pub struct ImageSet {
    pub shape: ImageShape,
    /// `count x shape.len()` bytes, channel-major per image.
    pub pixels: Vec<u8>,
    /// One class per image (IDX label files, class subfolders, the generated shapes); empty
    /// for a folder of images without classes.
    pub labels: Vec<u8>,
}

impl ImageSet {
    /// Number of images.
    pub fn count(&self) -> usize {
        self.pixels.len() / self.shape.len().max(1)
    }

    /// Image `i` scaled to [-1, 1], appended to `out`.
    pub fn push_scaled(&self, i: usize, out: &mut Vec<f64>) {
        let n = self.shape.len();
        out.extend(
            self.pixels[i * n..(i + 1) * n]
                .iter()
                .map(|&p| f64::from(p) / 127.5 - 1.0),
        );
    }

    /// `n` images drawn uniformly with replacement, row-major `n x shape.len()` in [-1, 1].
    pub fn sample<R: Rng>(&self, rng: &mut R, n: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(n * self.shape.len());
        let count = self.count();
        for _ in 0..n {
            self.push_scaled(rng.random_range(0..count), &mut out);
        }
        out
    }
}

/// The images a configuration names, read once per process (keyed by the whole configuration
/// and the split) and shared. Errors name the file, and the image within a folder.
pub fn load(cfg: &ImageData, split: Split) -> anyhow::Result<Arc<ImageSet>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<ImageSet>>>> = OnceLock::new();
    let key = format!("{cfg:?}/{split:?}");
    let cache = CACHE.get_or_init(Default::default);
    if let Some(set) = cache.lock().map_err(poisoned)?.get(&key) {
        return Ok(set.clone());
    }
    // Read outside the lock: another trial naming another set need not wait.
    let set = Arc::new(read(cfg, split)?);
    Ok(cache
        .lock()
        .map_err(poisoned)?
        .entry(key)
        .or_insert(set)
        .clone())
}

fn poisoned<T>(_: T) -> anyhow::Error {
    anyhow::anyhow!("the image cache was left inconsistent by a failed thread")
}

fn read(cfg: &ImageData, split: Split) -> anyhow::Result<ImageSet> {
    let shape = ImageShape {
        channels: cfg.channels,
        size: cfg.size,
    };
    match cfg.source {
        ImageSource::FashionMnist | ImageSource::Mnist => {
            let dir = idx_folder(cfg);
            let prefix = match split {
                Split::Train => "train",
                Split::HeldOut => "t10k",
            };
            let images = find_idx(&dir, &format!("{prefix}-images-idx3-ubyte"))?;
            let labels = find_idx(&dir, &format!("{prefix}-labels-idx1-ubyte"))?;
            idx_set(&images, Some(&labels), shape)
        }
        ImageSource::Idx => {
            let images = PathBuf::from(&cfg.path);
            let labels = labels_beside(&images);
            let set = idx_set(&images, labels.as_deref(), shape)?;
            Ok(tenth(set, split))
        }
        ImageSource::Folder => read_folder(Path::new(&cfg.path), shape, split),
        ImageSource::Shapes => Ok(tenth(shapes(shape, cfg.count, cfg.seed), split)),
    }
}

/// The folder holding a named set's IDX files.
pub fn idx_folder(cfg: &ImageData) -> PathBuf {
    match (cfg.source, cfg.path.is_empty()) {
        (ImageSource::FashionMnist, true) => PathBuf::from(FASHION_MNIST_DIR),
        _ => PathBuf::from(&cfg.path),
    }
}

/// `dir/name`, or `dir/name.gz`, whichever exists.
fn find_idx(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if plain.is_file() {
        return Ok(plain);
    }
    if gz.is_file() {
        return Ok(gz);
    }
    Err({
        anyhow::anyhow!(
            "{}: not found (nor {}); the IDX files of MNIST or Fashion-MNIST are \
                 train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and \
                 t10k-labels-idx1-ubyte, plain or .gz",
            plain.display(),
            gz.display()
        )
    })
}

/// The labels file next to an IDX images file (`*-images-idx3-ubyte*` ->
/// `*-labels-idx1-ubyte*`), where there is one.
fn labels_beside(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let labels = name.replace("images-idx3", "labels-idx1");
    (labels != name)
        .then(|| images.with_file_name(labels))
        .filter(|p| p.is_file())
}

/// The training part (the first nine tenths) or the held-out part (the rest) of a set that
/// comes in one piece.
fn tenth(set: ImageSet, split: Split) -> ImageSet {
    let n = set.count();
    let cut = n - n / 10;
    let (from, to) = match split {
        Split::Train => (0, cut),
        Split::HeldOut => (cut, n),
    };
    let len = set.shape.len();
    ImageSet {
        shape: set.shape,
        pixels: set.pixels[from * len..to * len].to_vec(),
        labels: if set.labels.is_empty() {
            Vec::new()
        } else {
            set.labels[from..to].to_vec()
        },
    }
}

/// The bytes of a file, gunzipped when it starts with gzip's magic number.
fn read_maybe_gz(path: &Path) -> anyhow::Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| anyhow::anyhow!("{}: not a readable gzip file ({e})", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// An IDX file's dimensions and unsigned-byte data (the only element type MNIST uses).
pub fn parse_idx(path: &Path, bytes: &[u8]) -> anyhow::Result<(Vec<usize>, Vec<u8>)> {
    let bad =
        |what: String| anyhow::anyhow!("{}: not an IDX file of bytes: {what}", path.display());
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!(
            "its magic number is {:02x?}, not 00 00 08 NDIMS",
            &bytes[..bytes.len().min(4)]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "element type 0x{:02x}; only 0x08 (unsigned byte) is read",
            bytes[2]
        )));
    }
    let ndims = usize::from(bytes[3]);
    let header = 4 + 4 * ndims;
    if ndims == 0 || bytes.len() < header {
        return Err(bad(format!(
            "{ndims} dimensions and {} bytes: the header is cut short",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let want = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let have = bytes.len() - header;
    match want {
        Some(w) if w == have => Ok((dims, bytes[header..].to_vec())),
        Some(w) => Err(bad(format!(
            "its header says {dims:?} = {w} bytes of data, the file holds {have} (truncated \
             or padded)"
        ))),
        None => Err(bad(format!("its dimensions {dims:?} overflow"))),
    }
}

/// Images from an IDX file (and their labels from another), which must be `shape`.
fn idx_set(images: &Path, labels: Option<&Path>, shape: ImageShape) -> anyhow::Result<ImageSet> {
    let (dims, pixels) = parse_idx(images, &read_maybe_gz(images)?)?;
    let (n, rows, cols, channels) = match dims[..] {
        [n, r, c] => (n, r, c, 1),
        [n, r, c, ch] => (n, r, c, ch),
        _ => {
            return Err(anyhow::anyhow!(
                "{}: images are an IDX file of 3 dimensions (count, rows, columns) or 4 \
                 (count, rows, columns, channels); this one has {dims:?}",
                images.display()
            ))
        }
    };
    if rows != shape.size || cols != shape.size || channels != shape.channels {
        return Err(anyhow::anyhow!(
            "{}: its images are {rows} x {cols} with {channels} channel(s); the experiment asks \
             for {s} x {s} with {c} (data.size, data.channels); IDX images are not resized",
            images.display(),
            s = shape.size,
            c = shape.channels
        ));
    }
    if n == 0 {
        return Err(anyhow::anyhow!("{}: holds no image", images.display()));
    }
    // IDX stores channels last; rows here are channel-major.
    let pixels = if channels == 1 {
        pixels
    } else {
        let hw = rows * cols;
        let mut out = vec![0u8; pixels.len()];
        for (img, src) in out
            .chunks_mut(hw * channels)
            .zip(pixels.chunks(hw * channels))
        {
            for p in 0..hw {
                for c in 0..channels {
                    img[c * hw + p] = src[p * channels + c];
                }
            }
        }
        out
    };
    let labels = match labels {
        None => Vec::new(),
        Some(path) => {
            let (ldims, labels) = parse_idx(path, &read_maybe_gz(path)?)?;
            if ldims != [n] {
                return Err(anyhow::anyhow!(
                    "{}: holds labels of shape {ldims:?}; its images file {} holds {n} images",
                    path.display(),
                    images.display()
                ));
            }
            labels
        }
    };
    Ok(ImageSet {
        shape,
        pixels,
        labels,
    })
}

/// Whether a folder entry is an image this reader takes (by its extension).
fn is_image_file(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// The images of a folder, either its own PNG and JPEG files (no labels; the last tenth in
/// name order held out) or, when it holds no image itself, its subfolders' as classes (label
/// = the subfolder's place in name order, as torchvision's `ImageFolder`; the last tenth of
/// each class held out, at least one image). Each image is scaled so its shorter side is
/// `shape.size`, cut to the central square, and turned grey or RGB.
fn read_folder(dir: &Path, shape: ImageShape, split: Split) -> anyhow::Result<ImageSet> {
    let (files, classes) = folder_entries(dir)?;
    if classes.is_empty() {
        if files.len() < 2 {
            anyhow::bail!(
                "{}: holds {} PNG/JPEG image(s) and no class subfolder; a data set needs at least 2 images (one tenth is held out)",
                dir.display(),
                files.len()
            );
        }
        return Ok(tenth(read_images(&files, shape, Vec::new())?, split));
    }
    if !files.is_empty() {
        anyhow::bail!(
            "{}: holds both images ({}, ...) and class subfolders ({}, ...): put every image in a class subfolder, or none",
            dir.display(),
            files[0].display(),
            classes[0].0
        );
    }
    if classes.len() < 2 || classes.len() > 256 {
        anyhow::bail!(
            "{}: holds {} class subfolder(s) with images; a labelled folder needs 2 to 256 classes (or put the images in the folder itself, unlabelled)",
            dir.display(),
            classes.len()
        );
    }
    let mut chosen = Vec::new();
    let mut labels = Vec::new();
    for (label, (name, class_files)) in classes.iter().enumerate() {
        if class_files.len() < 2 {
            anyhow::bail!(
                "{}: class `{name}` holds {} image(s); each class needs at least 2 (one is held out)",
                dir.display(),
                class_files.len()
            );
        }
        let held = (class_files.len() / 10).max(1);
        let cut = class_files.len() - held;
        let part = match split {
            Split::Train => &class_files[..cut],
            Split::HeldOut => &class_files[cut..],
        };
        chosen.extend(part.iter().cloned());
        labels.extend(std::iter::repeat_n(label as u8, part.len()));
    }
    read_images(&chosen, shape, labels)
}

/// The image files of a folder, and its subfolders that hold image files (name, files), all
/// in name order. Hidden entries (names starting with `.`) are skipped.
#[allow(clippy::type_complexity)]
fn folder_entries(dir: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<(String, Vec<PathBuf>)>)> {
    let list = |d: &Path| -> anyhow::Result<Vec<PathBuf>> {
        let entries = std::fs::read_dir(d).map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
            })
            .collect();
        paths.sort();
        Ok(paths)
    };
    let images = |paths: &[PathBuf]| -> Vec<PathBuf> {
        paths
            .iter()
            .filter(|p| p.is_file() && is_image_file(p))
            .cloned()
            .collect()
    };
    let top = list(dir)?;
    let mut classes = Vec::new();
    for sub in top.iter().filter(|p| p.is_dir()) {
        let files = images(&list(sub)?);
        if !files.is_empty() {
            let name = sub.file_name().map(|n| n.to_string_lossy().into_owned());
            classes.push((name.unwrap_or_default(), files));
        }
    }
    Ok((images(&top), classes))
}

/// `files` read as one image set with `labels` (empty: unlabelled).
fn read_images(files: &[PathBuf], shape: ImageShape, labels: Vec<u8>) -> anyhow::Result<ImageSet> {
    let mut pixels = Vec::with_capacity(files.len() * shape.len());
    for f in files {
        let img = image::open(f)
            .map_err(|e| anyhow::anyhow!("{}: not a readable image ({e})", f.display()))?;
        pixels.extend(square_pixels(img, shape));
    }
    Ok(ImageSet {
        shape,
        pixels,
        labels,
    })
}

/// An image scaled (shorter side to `shape.size`, Catmull-Rom) and centre-cropped to a square,
/// as channel-major bytes.
fn square_pixels(img: image::DynamicImage, shape: ImageShape) -> Vec<u8> {
    use image::imageops::FilterType;
    let s = shape.size as u32;
    let (w, h) = (img.width().max(1), img.height().max(1));
    let scale = f64::from(s) / f64::from(w.min(h));
    let (nw, nh) = (
        ((f64::from(w) * scale).round() as u32).max(s),
        ((f64::from(h) * scale).round() as u32).max(s),
    );
    let img =
        img.resize_exact(nw, nh, FilterType::CatmullRom)
            .crop_imm((nw - s) / 2, (nh - s) / 2, s, s);
    let hw = shape.size * shape.size;
    if shape.channels == 1 {
        img.to_luma8().into_raw()
    } else {
        let rgb = img.to_rgb8().into_raw();
        let mut out = vec![0u8; 3 * hw];
        for p in 0..hw {
            for c in 0..3 {
                out[c * hw + p] = rgb[p * 3 + c];
            }
        }
        out
    }
}

/// The generated image set: `count` images of one of four shapes (class 0 disc, 1 square,
/// 2 ring, 3 cross), each at a random centre and size, bright on a dark background (in colour
/// with a random hue per image), drawn from `seed` alone so every trial sees the same set.
pub fn shapes(shape: ImageShape, count: usize, seed: u64) -> ImageSet {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let s = shape.size as f64;
    let hw = shape.size * shape.size;
    let mut pixels = Vec::with_capacity(count * shape.len());
    let mut labels = Vec::with_capacity(count);
    for _ in 0..count {
        let class: u8 = rng.random_range(0..4);
        let r = rng.random_range(0.18..0.32) * s;
        let cx = rng.random_range(r..s - r);
        let cy = rng.random_range(r..s - r);
        let colour: [f64; 3] = if shape.channels == 1 {
            [1.0; 3]
        } else {
            [
                rng.random_range(0.3..1.0),
                rng.random_range(0.3..1.0),
                rng.random_range(0.3..1.0),
            ]
        };
        let mut img = vec![0u8; shape.len()];
        for y in 0..shape.size {
            for x in 0..shape.size {
                // Pixel centres; `inside` is the shape's coverage of this pixel (0 or 1).
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let d = dx.hypot(dy);
                let inside = match class {
                    0 => d <= r,
                    1 => dx.abs() <= 0.8 * r && dy.abs() <= 0.8 * r,
                    2 => d <= r && d >= 0.6 * r,
                    _ => (dx.abs() <= 0.25 * r || dy.abs() <= 0.25 * r) && d <= r,
                };
                if inside {
                    for c in 0..shape.channels {
                        img[c * hw + y * shape.size + x] = (colour[c] * 255.0).round() as u8;
                    }
                }
            }
        }
        pixels.extend(img);
        labels.push(class);
    }
    ImageSet {
        shape,
        pixels,
        labels,
    }
}

/// Checks, before anything is written, that the images a configuration names can be read
/// (the training split; a held-out split is read when a measurement needs it).
pub fn check(cfg: &ImageData) -> Result<(), String> {
    load(cfg, Split::Train)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Checks that the held-out split of a configuration's images can be read.
pub fn check_held_out(cfg: &ImageData) -> Result<(), String> {
    load(cfg, Split::HeldOut)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend(d.to_be_bytes());
        }
        b.extend(data);
        b
    }

    #[test]
    fn idx_files_parse_and_corrupt_ones_are_refused_by_name() -> anyhow::Result<()> {
        let p = Path::new("x.idx");
        let data: Vec<u8> = (0..24).collect();
        let (dims, px) = parse_idx(p, &idx_bytes(&[2, 3, 4], &data))?;
        assert_eq!((dims, px), (vec![2, 3, 4], data.clone()));
        let mut wrong_magic = idx_bytes(&[2, 3, 4], &data);
        wrong_magic[0] = 1;
        let mut wrong_type = idx_bytes(&[2, 3, 4], &data);
        wrong_type[2] = 0x0d;
        for (bytes, says) in [
            (wrong_magic, "magic number"),
            (wrong_type, "element type 0x0d"),
            (idx_bytes(&[2, 3, 4], &data[..23]), "holds 23"),
            (idx_bytes(&[2, 3, 4], &data)[..9].to_vec(), "cut short"),
        ] {
            let e = parse_idx(p, &bytes).err().map(|e| e.to_string());
            let e = e.unwrap_or_default();
            assert!(e.starts_with("x.idx: ") && e.contains(says), "{e}");
        }
        Ok(())
    }

    #[test]
    fn class_subfolders_label_a_folder_and_each_class_keeps_its_last_tenth_for_held_out(
    ) -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().join("pictures");
        let shape = ImageShape {
            channels: 1,
            size: 4,
        };
        // Class `boots` (images of value 10 + i) and `coats` (value 100 + i); a hidden folder
        // and a subfolder without images are not classes.
        let write = |dir: &Path, n: u8, base: u8| -> anyhow::Result<()> {
            std::fs::create_dir_all(dir)?;
            for i in 0..n {
                image::GrayImage::from_pixel(6, 6, image::Luma([base + i]))
                    .save(dir.join(format!("{i:02}.png")))?;
            }
            Ok(())
        };
        write(&root.join("boots"), 5, 10)?;
        write(&root.join("coats"), 12, 100)?;
        write(&root.join(".thumbs"), 3, 200)?;
        std::fs::create_dir_all(root.join("notes"))?;
        std::fs::write(root.join("notes/readme.txt"), "not an image")?;
        let train = read_folder(&root, shape, Split::Train)?;
        let held = read_folder(&root, shape, Split::HeldOut)?;
        assert_eq!(train.labels, [vec![0u8; 4], vec![1u8; 11]].concat());
        assert_eq!(held.labels, [0u8, 1]);
        // The held-out images are each class's last in name order.
        let first_pixel = |set: &ImageSet, i: usize| set.pixels[i * shape.len()];
        assert_eq!((first_pixel(&held, 0), first_pixel(&held, 1)), (14, 111));
        assert_eq!(first_pixel(&train, 4), 100);

        // Refusals name the folder and say what is allowed.
        let refused = |dir: &Path| {
            read_folder(dir, shape, Split::Train)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        image::GrayImage::new(6, 6).save(root.join("loose.png"))?;
        let e = refused(&root);
        assert!(e.contains("both images") && e.contains("boots"), "{e}");
        let one = tmp.path().join("one");
        write(&one.join("only"), 3, 0)?;
        let e = refused(&one);
        assert!(
            e.contains("1 class subfolder") && e.contains("2 to 256"),
            "{e}"
        );
        let thin = tmp.path().join("thin");
        write(&thin.join("a"), 3, 0)?;
        write(&thin.join("b"), 1, 0)?;
        let e = refused(&thin);
        assert!(e.contains("class `b` holds 1 image"), "{e}");
        Ok(())
    }

    #[test]
    fn generated_shapes_are_seeded_labelled_and_split_by_tenths() {
        let shape = ImageShape {
            channels: 3,
            size: 16,
        };
        let a = shapes(shape, 50, 1);
        assert_eq!(a.pixels, shapes(shape, 50, 1).pixels);
        assert_ne!(a.pixels, shapes(shape, 50, 2).pixels);
        assert_eq!((a.count(), a.labels.len()), (50, 50));
        assert!(a.labels.iter().all(|&l| l < 4));
        // Every image has a lit shape on a dark background.
        for i in 0..a.count() {
            let img = &a.pixels[i * shape.len()..(i + 1) * shape.len()];
            let lit = img.iter().filter(|&&p| p > 0).count();
            assert!(lit > 10 && lit < shape.len() / 2, "{lit}");
        }
        let mut row = Vec::new();
        a.push_scaled(0, &mut row);
        assert!(row.iter().all(|x| (-1.0..=1.0).contains(x)));
        assert!(row.contains(&-1.0));
        let (train, held) = (
            tenth(shapes(shape, 50, 1), Split::Train),
            tenth(a, Split::HeldOut),
        );
        assert_eq!((train.count(), held.count()), (45, 5));
    }
}
