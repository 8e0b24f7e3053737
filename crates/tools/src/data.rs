//! Fashion-MNIST, read straight from the gzipped IDX files of Debian's `dataset-fashion-mnist`
//! package (`/usr/share/datasets/fashion-mnist/`). Native only.
//!
//! IDX: a big-endian `u32` magic (`0x803` for images, `0x801` for labels), then one big-endian
//! `u32` per dimension (count, then rows and columns for images), then one `u8` per value.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

/// Where the Debian package puts the files.
pub const DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The Debian package that ships them.
pub const PACKAGE: &str = "dataset-fashion-mnist";
/// Labels in class-id order.
pub const CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

const IMAGES_MAGIC: u32 = 0x0803;
const LABELS_MAGIC: u32 = 0x0801;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{} not found: install the Debian package `{PACKAGE}` (apt-get install {PACKAGE}) or pass the directory that holds the files", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} is not a complete gzip file (truncated or corrupt): {source}", path.display())]
    Gzip { path: PathBuf, source: std::io::Error },
    #[error("{} has IDX magic {found:#06x}, expected {expected:#06x} (not a Fashion-MNIST {what} file)", path.display())]
    BadMagic { path: PathBuf, found: u32, expected: u32, what: &'static str },
    #[error("{} is truncated or padded: its header declares {declared} bytes, the file holds {found}", path.display())]
    BadLength { path: PathBuf, declared: usize, found: usize },
    #[error("{images} images but {labels} labels")]
    CountMismatch { images: usize, labels: usize },
    #[error("{} holds label {label} at index {index}; Fashion-MNIST has {} classes", path.display(), CLASS_NAMES.len())]
    BadLabel { path: PathBuf, index: usize, label: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// 60 000 images.
    Train,
    /// 10 000 images.
    Test,
}

impl Split {
    /// File names of the images and the labels.
    pub fn files(self) -> (&'static str, &'static str) {
        match self {
            Split::Train => ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
            Split::Test => ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
        }
    }
}

/// Grey images (0 = black) of one size, with their class ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub width: usize,
    pub height: usize,
    /// `len * height * width` bytes, image after image, row-major.
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.width * self.height;
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Distinct class count: the largest label + 1.
    pub fn n_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&m| m as usize + 1)
    }

    /// The first `n` images.
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            pixels: self.pixels[..n * self.width * self.height].to_vec(),
            labels: self.labels[..n].to_vec(),
            ..*self
        }
    }

    /// Every image centred on a black `size x size` square (28x28 -> 32x32 for the tokenizer).
    /// Images larger than `size` are returned unchanged.
    pub fn padded(&self, size: usize) -> Dataset {
        if self.width >= size && self.height >= size {
            return self.clone();
        }
        let (x0, y0) = ((size - self.width) / 2, (size - self.height) / 2);
        let mut pixels = vec![0u8; self.len() * size * size];
        for (i, out) in pixels.chunks_exact_mut(size * size).enumerate() {
            for (r, row) in self.image(i).chunks_exact(self.width).enumerate() {
                let at = (y0 + r) * size + x0;
                out[at..at + self.width].copy_from_slice(row);
            }
        }
        Dataset { width: size, height: size, pixels, labels: self.labels.clone() }
    }
}

/// One split of Fashion-MNIST from `dir` (usually [`DEFAULT_DIR`]), at its native 28x28.
pub fn load(dir: &Path, split: Split) -> Result<Dataset, DataError> {
    let (images_file, labels_file) = split.files();
    let (count, height, width, pixels) = load_images(&dir.join(images_file))?;
    let labels_path = dir.join(labels_file);
    let labels = load_labels(&labels_path)?;
    if labels.len() != count {
        return Err(DataError::CountMismatch { images: count, labels: labels.len() });
    }
    if let Some(index) = labels.iter().position(|&l| l as usize >= CLASS_NAMES.len()) {
        return Err(DataError::BadLabel { path: labels_path, index, label: labels[index] });
    }
    Ok(Dataset { width, height, pixels, labels })
}

/// A gzipped IDX image file: `(count, rows, cols, pixels)`.
pub fn load_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    let (dims, data) = read_idx(path, IMAGES_MAGIC, 3, "images")?;
    Ok((dims[0], dims[1], dims[2], data))
}

/// A gzipped IDX label file.
pub fn load_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    Ok(read_idx(path, LABELS_MAGIC, 1, "labels")?.1)
}

/// Decompress and check one IDX file: its magic, and that the values fill it exactly.
fn read_idx(
    path: &Path,
    magic: u32,
    rank: usize,
    what: &'static str,
) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let gz = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => DataError::Missing { path: path.to_path_buf() },
        _ => DataError::Io { path: path.to_path_buf(), source },
    })?;
    let mut raw = Vec::new();
    GzDecoder::new(gz.as_slice())
        .read_to_end(&mut raw)
        .map_err(|source| DataError::Gzip { path: path.to_path_buf(), source })?;
    let header = 4 * (1 + rank);
    let word = |i: usize| u32::from_be_bytes([raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]]);
    if raw.len() < 4 || word(0) != magic {
        let found = if raw.len() < 4 { 0 } else { word(0) };
        return Err(DataError::BadMagic { path: path.to_path_buf(), found, expected: magic, what });
    }
    if raw.len() < header {
        return Err(DataError::BadLength { path: path.to_path_buf(), declared: header, found: raw.len() });
    }
    let dims: Vec<usize> = (1..=rank).map(|i| word(i) as usize).collect();
    let values = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let declared = values.and_then(|v| v.checked_add(header)).unwrap_or(usize::MAX);
    if declared != raw.len() {
        return Err(DataError::BadLength { path: path.to_path_buf(), declared, found: raw.len() });
    }
    raw.drain(..header);
    Ok((dims, raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_centres_the_image_on_black() {
        let d = Dataset { width: 2, height: 2, pixels: vec![1, 2, 3, 4, 5, 6, 7, 8], labels: vec![0, 1] };
        let p = d.padded(4);
        assert_eq!((p.width, p.height, p.len()), (4, 4, 2));
        assert_eq!(p.image(1), &[0, 0, 0, 0, 0, 5, 6, 0, 0, 7, 8, 0, 0, 0, 0, 0]);
        assert_eq!(d.n_classes(), 2);
        assert_eq!(d.take(1).pixels, vec![1, 2, 3, 4]);
    }
}
