//! Fashion-MNIST, read straight from the gzipped IDX files of Debian's `dataset-fashion-mnist`
//! package (`/usr/share/datasets/fashion-mnist/`). Native only.
//!
//! IDX: a big-endian `u32` magic (`0x803` for images, `0x801` for labels), then one big-endian
//! `u32` per dimension (count, then rows and columns for images), then one `u8` per value.

use std::io::Read;
use std::path::{Path, PathBuf};

use arpg::choice::Choice;
use arpg::image::Image;
use flate2::read::GzDecoder;

use crate::emoji;

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
    #[error(transparent)]
    Emoji(#[from] emoji::EmojiError),
    #[error("the data's {width}x{height} images do not fit the tokenizer's {size}x{size} frame")]
    TooLarge { width: usize, height: usize, size: usize },
}

/// The datasets the tools train on, by name (`arpg train --data emoji`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Fashion-MNIST from Debian's package: grey, 28x28 centred on a 32x32 frame, 10 classes.
    FashionMnist,
    /// The emoji dataset of `crates/tools/data/emoji-classes.json` (`make emoji-data`): RGB,
    /// 64x64 (or 32x32), 12 classes.
    Emoji,
}

impl Choice for Source {
    const ALL: &'static [Self] = &[Source::FashionMnist, Source::Emoji];
    const WHAT: &'static str = "dataset";
    fn name(self) -> &'static str {
        match self {
            Source::FashionMnist => "fashion-mnist",
            Source::Emoji => "emoji",
        }
    }
}

arpg::from_str_by_name!(Source);

impl Source {
    /// Where the data is installed.
    pub fn default_dir(self) -> PathBuf {
        match self {
            Source::FashionMnist => PathBuf::from(DEFAULT_DIR),
            Source::Emoji => emoji::default_dir().unwrap_or_else(|| PathBuf::from(".cache/arpg/emoji")),
        }
    }

    pub fn class_names(self) -> Result<Vec<String>, DataError> {
        Ok(match self {
            Source::FashionMnist => CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
            Source::Emoji => emoji::Spec::builtin()?.classes.iter().map(|c| c.name.clone()).collect(),
        })
    }

    /// The side and channels of its images as a tokenizer sees them: Fashion-MNIST's 28x28 grey
    /// padded to 32x32, the emoji at 64x64 RGB.
    pub fn frame(self) -> (usize, usize) {
        match self {
            Source::FashionMnist => (32, 1),
            Source::Emoji => (64, 3),
        }
    }

    /// The colour its pictures sit on, one value per channel: what a frame is padded with and a
    /// shifted picture filled with (recorded in the checkpoints trained on it).
    pub fn background(self) -> Result<Vec<u8>, DataError> {
        Ok(match self {
            Source::FashionMnist => vec![0],
            Source::Emoji => emoji::Spec::builtin()?.background.to_vec(),
        })
    }

    /// The background and, per class, whether a mirrored picture keeps its class: for `augment`.
    /// Garments mirror; emoji mirror except the classes that hold text, symbols that read one
    /// way, and flags (`emoji::UNMIRRORED`).
    pub fn augment_rules(self) -> Result<(Vec<u8>, Vec<bool>), DataError> {
        let mirror = match self {
            Source::FashionMnist => vec![true; CLASS_NAMES.len()],
            Source::Emoji => {
                let spec = emoji::Spec::builtin()?;
                spec.classes.iter().map(|c| !emoji::UNMIRRORED.contains(&c.id.as_str())).collect()
            }
        };
        Ok((self.background()?, mirror))
    }

    /// One split from `dir` as it comes: Fashion-MNIST at its native 28x28, the emoji rendered
    /// at `size` x `size` (64 or 32 in the dataset's definition).
    pub fn split(self, dir: &Path, split: Split, size: usize) -> Result<Dataset, DataError> {
        Ok(match self {
            Source::FashionMnist => load(dir, split)?,
            Source::Emoji => {
                let data = emoji::load(dir, size)?;
                let part = if split == Split::Train { data.train } else { data.test };
                Dataset::from_images(&part.images, part.labels)
            }
        })
    }

    /// The training split from `dir`, at `size` x `size` (padded, or for the emoji rendered at
    /// that size), the first `limit` images when `limit > 0`.
    pub fn train(self, dir: &Path, size: usize, limit: usize) -> Result<Dataset, DataError> {
        let data = self.split(dir, Split::Train, size)?;
        if size < data.width.max(data.height) {
            return Err(DataError::TooLarge { width: data.width, height: data.height, size });
        }
        let data = if limit > 0 { data.take(limit) } else { data };
        Ok(data.padded(size))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// 60 000 images.
    Train,
    /// 10 000 images.
    Test,
}

impl Choice for Split {
    const ALL: &'static [Self] = &[Split::Train, Split::Test];
    const WHAT: &'static str = "split";
    fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

arpg::from_str_by_name!(Split);

impl Split {
    /// File names of the images and the labels.
    pub fn files(self) -> (&'static str, &'static str) {
        match self {
            Split::Train => ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
            Split::Test => ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
        }
    }
}

/// Images of one size and channel count (0 = black), with their class ids: what the trainers
/// read. Fashion-MNIST is grey; the emoji dataset (`emoji`) is RGB.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub width: usize,
    pub height: usize,
    /// 1 (grey) or 3 (RGB), a pixel's channels side by side as in `arpg::image::Image`.
    pub channels: usize,
    /// `len * height * width * channels` bytes, image after image, row-major.
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

    /// Values per image.
    fn image_len(&self) -> usize {
        self.width * self.height * self.channels
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Image `i` as an [`Image`].
    pub fn to_image(&self, i: usize) -> Image {
        Image::from_raw(self.width, self.height, self.channels, self.image(i).to_vec())
            .expect("sizes checked")
    }

    /// Images of one size and channel count, with their labels.
    pub fn from_images(images: &[Image], labels: Vec<u8>) -> Dataset {
        let (width, height, channels) = images.first().map_or((0, 0, 1), |i| (i.width, i.height, i.channels));
        assert!(
            images.iter().all(|i| (i.width, i.height, i.channels) == (width, height, channels)),
            "one size"
        );
        assert_eq!(images.len(), labels.len(), "one label per image");
        let pixels = images.iter().flat_map(|i| i.pixels.iter().copied()).collect();
        Dataset { width, height, channels, pixels, labels }
    }

    /// Images of each class `0..n_classes` (labels from `n_classes` on are not counted).
    pub fn class_counts(&self, n_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; n_classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Distinct class count: the largest label + 1.
    pub fn n_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&m| m as usize + 1)
    }

    /// The first `n` images.
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            pixels: self.pixels[..n * self.image_len()].to_vec(),
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
        let images: Vec<Image> = (0..self.len()).map(|i| self.to_image(i).pad_to(size, size).0).collect();
        Dataset::from_images(&images, self.labels.clone())
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
    Ok(Dataset { width, height, channels: 1, pixels, labels })
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
        let d = Dataset {
            width: 2,
            height: 2,
            channels: 1,
            pixels: vec![1, 2, 3, 4, 5, 6, 7, 8],
            labels: vec![0, 1],
        };
        let p = d.padded(4);
        assert_eq!((p.width, p.height, p.len()), (4, 4, 2));
        assert_eq!(p.image(1), &[0, 0, 0, 0, 0, 5, 6, 0, 0, 7, 8, 0, 0, 0, 0, 0]);
        assert_eq!(d.n_classes(), 2);
        assert_eq!(d.take(1).pixels, vec![1, 2, 3, 4]);
    }

    #[test]
    fn colour_images_pad_and_convert_with_every_channel() {
        let rgb = Image::from_raw(1, 1, 3, vec![10, 20, 30]).unwrap();
        let d = Dataset::from_images(&[rgb.clone(), rgb], vec![2, 0]);
        assert_eq!((d.channels, d.pixels.len(), d.n_classes()), (3, 6, 3));
        let p = d.padded(3);
        assert_eq!(p.image(1).len(), 27);
        assert_eq!(p.to_image(1).get(1, 1), [10, 20, 30]);
        assert_eq!(p.to_image(1).get(0, 0), [0, 0, 0]);
    }
}
