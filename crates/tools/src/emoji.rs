//! The emoji colour dataset: 12 classes, 6575 RGB images (1893 emoji in three styles, plus one
//! skin tone each where there are tones), 5924 train / 651 test, read from three pinned npm
//! packages. Native only; nothing is downloaded here (`make emoji-data` installs the packages).
//!
//! **The definition** is `crates/tools/data/emoji-classes.json`, a verbatim copy of
//! `shared/data/emoji-classes.json` (sha256 `ba22f7c3…acce30`; its README is
//! `shared/data/README.md`), built in with `include_str!` so that the build needs nothing outside
//! the repository. It names the packages (version, tarball sha256), the background, the classes
//! (label = position in `classes`) with their subcategories and image counts, and the rules. It is
//! used as it is: [`load`] checks the counts it finds against the JSON's and fails with
//! [`EmojiError::Counts`] when any differs.
//!
//! **Where the files are**: `<dir>/<package>/` is the package tarball's `package/` directory
//! ([`default_dir`] is `$HOME/.cache/arpg/emoji`, what the Makefile fills), e.g.
//! `<dir>/emoji-datasource-google/emoji.json` and `<dir>/@lobehub/fluent-emoji-3d/assets/`.
//!
//! **Which images** ([`catalogue`]): the entries of the google package's `emoji.json` in
//! `sort_order`; an entry whose `subcategory` no class lists is skipped (category Component, and
//! `keycap`). Each entry gives its base picture and, when it has `skin_variations`, exactly one
//! tone ([`tone_variation`]: tone `TONES[sort_order % 5]`, key `T` or else `T-T`). Each of those
//! gives up to three images, in the order google, twitter, fluent3d: google / twitter
//! `img/<set>/64/<image>` when `has_img_<set>`, fluent3d `assets/<code>.webp` by
//! [`fluent_candidates`] over `unified` then `non_qualified` (none found: no image).
//!
//! **Split** ([`is_test`]): by base emoji, test iff the first byte of `sha256(base unified code,
//! as written in emoji.json, upper case)` is below 26. Every style and tone of a test emoji is
//! held out.
//!
//! **Pixels** (`render`): RGBA composited onto the background (255, 255, 255), centred on a square
//! when not square (only fluent `1fa90`, 256x264), then Pillow's `Image.BOX` down to the size
//! asked for, from the source each time (32x32 is not made from 64x64). The arithmetic is
//! Pillow's: all 6575 images at 64x64 and at 32x32 are byte-identical to a Pillow 9.4 rendering
//! by the same rules (the full-data test pins the sha256 of those pixels).
//!
//! **Output** ([`load`]): per split a [`Dataset`] of 3-channel `size x size` [`Image`]s with their
//! labels (`u8`, the class's position) and styles, in catalogue order, and the [`Counts`] per
//! class. Rendering runs on `available_parallelism` threads (about 2 s per size on 2 cores).

mod render;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use arpg::image::Image;
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use render::{RenderError, Rgba, composite, decode_png, decode_webp, resize_box, square};

/// The dataset's definition (see the module doc for where it comes from).
pub const CLASSES_JSON: &str = include_str!("../data/emoji-classes.json");

/// Skin-tone modifiers, picked by `sort_order % 5`.
pub const TONES: [&str; 5] = ["1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"];

/// Classes whose pictures change meaning when mirrored (sign tiles and marks hold letters,
/// digits and arrows; a mirrored flag is another flag or none): not mirrored by `augment`.
pub const UNMIRRORED: [&str; 3] = ["sign_tiles", "shapes_marks", "flags"];

/// `$HOME/.cache/arpg/emoji`, where `make emoji-data` unpacks the packages.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/arpg/emoji"))
}

#[derive(Debug, thiserror::Error)]
pub enum EmojiError {
    #[error("{} not found: run `make emoji-data` (installs the pinned npm packages) or pass the directory that holds them", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{what} is not valid: {source}")]
    Json { what: String, source: serde_json::Error },
    #[error("emoji-classes.json: {0}")]
    Spec(String),
    #[error("emoji {code} (sort_order {sort_order}) has skin tones but neither {tone} nor {tone}-{tone}")]
    NoTone { code: String, sort_order: usize, tone: &'static str },
    #[error("cannot render {}: {source}", path.display())]
    Render { path: PathBuf, source: RenderError },
    #[error("the images found differ from emoji-classes.json: {0}")]
    Counts(Mismatches),
}

/// Each count that differs: what, the JSON's number, the number found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatches(pub Vec<(String, usize, usize)>);

impl fmt::Display for Mismatches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (what, expected, found)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            write!(f, "{sep}{what}: expected {expected}, found {found}")?;
        }
        Ok(())
    }
}

/// One of the three picture sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    Google,
    Twitter,
    Fluent3d,
}

impl Style {
    /// In image order.
    pub const ALL: [Style; 3] = [Style::Google, Style::Twitter, Style::Fluent3d];

    pub fn name(self) -> &'static str {
        match self {
            Style::Google => "google",
            Style::Twitter => "twitter",
            Style::Fluent3d => "fluent3d",
        }
    }
}

/// `emoji-classes.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct Spec {
    pub version: u32,
    pub sources: Vec<Source>,
    pub background: [u8; 3],
    pub size: usize,
    pub classes: Vec<ClassSpec>,
    pub split: SplitRule,
    pub totals: Totals,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Source {
    pub style: Style,
    pub package: String,
    pub version: String,
    pub licence: String,
    pub tarball_sha256: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ClassSpec {
    pub id: String,
    pub name: String,
    pub category: String,
    pub subcategories: Vec<String>,
    pub count_by_style: BTreeMap<Style, usize>,
    /// Images of all styles.
    pub count: usize,
    /// Emoji (base entries).
    pub emoji: usize,
    /// Images in the test split.
    pub count_test: usize,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SplitRule {
    pub test_byte_threshold: u8,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Totals {
    pub images: usize,
    pub test_images: usize,
    pub emoji: usize,
    pub by_style: BTreeMap<Style, usize>,
}

impl Spec {
    /// The built-in [`CLASSES_JSON`].
    pub fn builtin() -> Result<Spec, EmojiError> {
        Spec::parse(CLASSES_JSON)
    }

    /// Parses and checks a definition: 1 to 256 classes, each subcategory in one class, one
    /// source per style.
    pub fn parse(json: &str) -> Result<Spec, EmojiError> {
        let spec: Spec = serde_json::from_str(json)
            .map_err(|source| EmojiError::Json { what: "emoji-classes.json".into(), source })?;
        if spec.classes.is_empty() || spec.classes.len() > 256 {
            return Err(EmojiError::Spec(format!("{} classes (1 to 256)", spec.classes.len())));
        }
        let mut seen = HashSet::new();
        if let Some(s) = spec.classes.iter().flat_map(|c| &c.subcategories).find(|s| !seen.insert(*s)) {
            return Err(EmojiError::Spec(format!("subcategory {s} is in two classes")));
        }
        for style in Style::ALL {
            let n = spec.sources.iter().filter(|s| s.style == style).count();
            if n != 1 {
                return Err(EmojiError::Spec(format!("{n} sources for style {}", style.name())));
            }
        }
        Ok(spec)
    }

    /// The package directory of `style` under `dir`.
    pub fn package_dir(&self, dir: &Path, style: Style) -> Result<PathBuf, EmojiError> {
        let source = self.sources.iter().find(|s| s.style == style);
        let source =
            source.ok_or_else(|| EmojiError::Spec(format!("no source for style {}", style.name())))?;
        Ok(dir.join(&source.package))
    }

    /// Class ids in label order.
    pub fn class_ids(&self) -> Vec<&str> {
        self.classes.iter().map(|c| c.id.as_str()).collect()
    }
}

/// The fields of an `emoji.json` entry (or of one of its skin variations) that the rules read.
#[derive(Clone, Debug, Deserialize)]
pub struct Picture {
    pub unified: String,
    pub non_qualified: Option<String>,
    pub image: String,
    #[serde(default)]
    pub has_img_google: bool,
    #[serde(default)]
    pub has_img_twitter: bool,
}

/// An `emoji.json` entry.
#[derive(Clone, Debug, Deserialize)]
pub struct Entry {
    #[serde(flatten)]
    pub picture: Picture,
    pub subcategory: String,
    pub sort_order: usize,
    pub skin_variations: Option<BTreeMap<String, Picture>>,
}

/// The skin tone an entry gets: `TONES[sort_order % 5]`.
pub fn skin_tone(sort_order: usize) -> &'static str {
    TONES[sort_order % 5]
}

/// The one skin variation an entry contributes: under the key `T`, or else `T-T` (the
/// two-person emoji), `T` = [`skin_tone`]. `None` for an entry without tones.
pub fn tone_variation(entry: &Entry) -> Result<Option<&Picture>, EmojiError> {
    let Some(variations) = &entry.skin_variations else { return Ok(None) };
    let tone = skin_tone(entry.sort_order);
    let found = variations.get(tone).or_else(|| variations.get(&format!("{tone}-{tone}")));
    found.map(Some).ok_or_else(|| EmojiError::NoTone {
        code: entry.picture.unified.clone(),
        sort_order: entry.sort_order,
        tone,
    })
}

/// The file stems tried for a code in the fluent package, in order: the code in lower case as it
/// is, without `-fe0f`, with the leading zeros of every part removed (`00a9` -> `a9`; an all-zero
/// part keeps one `0`), both.
pub fn fluent_candidates(code: &str) -> [String; 4] {
    let lower = code.to_lowercase();
    let bare = lower.replace("-fe0f", "");
    let strip = |s: &str| {
        let parts: Vec<&str> = s.split('-').map(|p| p.trim_start_matches('0')).collect();
        parts.iter().map(|p| if p.is_empty() { "0" } else { p }).collect::<Vec<_>>().join("-")
    };
    let (stripped, both) = (strip(&lower), strip(&bare));
    [lower, bare, stripped, both]
}

/// The fluent file name of a picture among `assets` (file names): the candidates of `unified`,
/// then those of `non_qualified`.
pub fn find_fluent(picture: &Picture, assets: &HashSet<String>) -> Option<String> {
    let codes = std::iter::once(&picture.unified).chain(&picture.non_qualified);
    codes.flat_map(|c| fluent_candidates(c)).map(|stem| format!("{stem}.webp")).find(|f| assets.contains(f))
}

/// The split rule: test iff `sha256(code)[0] < threshold`, `code` the base entry's `unified`
/// exactly as emoji.json writes it (upper case).
pub fn is_test(base_code: &str, threshold: u8) -> bool {
    Sha256::digest(base_code.as_bytes())[0] < threshold
}

/// One image of the dataset, before its pixels are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The label: the class's position in `classes`.
    pub class: u8,
    pub style: Style,
    /// The picture's own `unified` code (the tone variant's for a tone).
    pub code: String,
    /// The base entry's `unified` code (what the split hashes).
    pub base: String,
    pub test: bool,
    pub path: PathBuf,
}

/// A missing file is [`EmojiError::Missing`] (the packages are not installed), any other failure
/// [`EmojiError::Io`].
fn io_error(path: &Path, source: std::io::Error) -> EmojiError {
    match source.kind() {
        std::io::ErrorKind::NotFound => EmojiError::Missing { path: path.to_path_buf() },
        _ => EmojiError::Io { path: path.to_path_buf(), source },
    }
}

/// The google package's `emoji.json`, in `sort_order`.
pub fn read_entries(spec: &Spec, dir: &Path) -> Result<Vec<Entry>, EmojiError> {
    let path = spec.package_dir(dir, Style::Google)?.join("emoji.json");
    let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
    let mut entries: Vec<Entry> = serde_json::from_slice(&bytes)
        .map_err(|source| EmojiError::Json { what: path.display().to_string(), source })?;
    entries.sort_by_key(|e| e.sort_order);
    Ok(entries)
}

/// The file names in the fluent package's `assets/`.
fn fluent_assets(spec: &Spec, dir: &Path) -> Result<HashSet<String>, EmojiError> {
    let assets = spec.package_dir(dir, Style::Fluent3d)?.join("assets");
    let listing = std::fs::read_dir(&assets).map_err(|e| io_error(&assets, e))?;
    let names = listing.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()));
    names.collect::<Result<_, _>>().map_err(|source| EmojiError::Io { path: assets, source })
}

/// Where one picture's image of `style` is, if it has one; `package` is that style's directory.
fn locate(package: &Path, assets: &HashSet<String>, p: &Picture, style: Style) -> Option<PathBuf> {
    match style {
        Style::Google if p.has_img_google => Some(package.join("img/google/64").join(&p.image)),
        Style::Twitter if p.has_img_twitter => Some(package.join("img/twitter/64").join(&p.image)),
        Style::Fluent3d => find_fluent(p, assets).map(|f| package.join("assets").join(f)),
        _ => None,
    }
}

/// Every image of the dataset in order (module doc, "Which images"), with its label and split.
/// Reads `emoji.json` and lists the fluent assets; reads no image.
pub fn catalogue(spec: &Spec, dir: &Path) -> Result<Vec<Item>, EmojiError> {
    let entries = read_entries(spec, dir)?;
    let assets = fluent_assets(spec, dir)?;
    let packages = Style::ALL.map(|style| spec.package_dir(dir, style));
    let packages: Vec<PathBuf> = packages.into_iter().collect::<Result<_, _>>()?;
    let class_of: BTreeMap<&str, u8> = spec
        .classes
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.subcategories.iter().map(move |s| (s.as_str(), i as u8)))
        .collect();
    let mut items = Vec::new();
    for entry in &entries {
        let Some(&class) = class_of.get(entry.subcategory.as_str()) else { continue };
        let test = is_test(&entry.picture.unified, spec.split.test_byte_threshold);
        for picture in std::iter::once(&entry.picture).chain(tone_variation(entry)?) {
            for (style, package) in Style::ALL.into_iter().zip(&packages) {
                let Some(path) = locate(package, &assets, picture, style) else { continue };
                let (code, base) = (picture.unified.clone(), entry.picture.unified.clone());
                items.push(Item { class, style, code, base, test, path });
            }
        }
    }
    Ok(items)
}

/// What a catalogue holds, per class (label order): images per style, images in the test split,
/// distinct base emoji.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    pub by_style: Vec<BTreeMap<Style, usize>>,
    pub test: Vec<usize>,
    pub emoji: Vec<usize>,
}

impl Counts {
    pub fn of(items: &[Item], n_classes: usize) -> Counts {
        let zero: BTreeMap<Style, usize> = Style::ALL.iter().map(|&s| (s, 0)).collect();
        let mut counts =
            Counts { by_style: vec![zero; n_classes], test: vec![0; n_classes], emoji: vec![0; n_classes] };
        let mut bases = HashSet::new();
        for item in items {
            let c = item.class as usize;
            *counts.by_style[c].entry(item.style).or_default() += 1;
            counts.test[c] += item.test as usize;
            counts.emoji[c] += bases.insert(&item.base) as usize;
        }
        counts
    }

    /// Images of class `c`, all styles.
    pub fn images(&self, c: usize) -> usize {
        self.by_style[c].values().sum()
    }

    /// Every count that differs from the JSON's, per class and in total.
    pub fn mismatches(&self, spec: &Spec) -> Mismatches {
        let mut out = Vec::new();
        let mut check = |what: String, expected: usize, found: usize| {
            if expected != found {
                out.push((what, expected, found));
            }
        };
        for (c, class) in spec.classes.iter().enumerate() {
            for style in Style::ALL {
                let expected = class.count_by_style.get(&style).copied().unwrap_or(0);
                check(format!("{} {}", class.id, style.name()), expected, self.by_style[c][&style]);
            }
            check(format!("{} images", class.id), class.count, self.images(c));
            check(format!("{} test images", class.id), class.count_test, self.test[c]);
            check(format!("{} emoji", class.id), class.emoji, self.emoji[c]);
        }
        let n = spec.classes.len();
        check("images".into(), spec.totals.images, (0..n).map(|c| self.images(c)).sum());
        check("test images".into(), spec.totals.test_images, self.test.iter().sum());
        check("emoji".into(), spec.totals.emoji, self.emoji.iter().sum());
        for style in Style::ALL {
            let found = self.by_style.iter().map(|m| m[&style]).sum();
            check(style.name().into(), spec.totals.by_style.get(&style).copied().unwrap_or(0), found);
        }
        Mismatches(out)
    }
}

/// The images of one split at one size, RGB, with their labels and styles (index-aligned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    pub size: usize,
    pub images: Vec<Image>,
    pub labels: Vec<u8>,
    pub styles: Vec<Style>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The whole dataset at one size.
#[derive(Clone, Debug)]
pub struct Emoji {
    pub spec: Spec,
    pub train: Dataset,
    pub test: Dataset,
    pub counts: Counts,
}

/// Reads and renders one image.
pub fn render_item(item: &Item, spec: &Spec, size: usize) -> Result<Image, EmojiError> {
    let bytes = std::fs::read(&item.path).map_err(|e| io_error(&item.path, e))?;
    let rgba = match item.style {
        Style::Fluent3d => decode_webp(&bytes),
        Style::Google | Style::Twitter => decode_png(&bytes),
    };
    let rgba = rgba.map_err(|source| EmojiError::Render { path: item.path.clone(), source })?;
    Ok(render::render(&rgba, spec.background, size))
}

/// Renders `items` in order, on up to `available_parallelism` threads.
pub fn render_all(items: &[Item], spec: &Spec, size: usize) -> Result<Vec<Image>, EmojiError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter().map(|i| render_item(i, spec, size)).collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut images = Vec::with_capacity(items.len());
        for worker in workers {
            images.extend(worker.join().expect("an emoji render thread panicked")?);
        }
        Ok(images)
    })
}

/// The dataset from the packages under `dir` at `size` x `size`, by the built-in definition:
/// checks the counts against the JSON before any image is decoded.
pub fn load(dir: &Path, size: usize) -> Result<Emoji, EmojiError> {
    load_with(Spec::builtin()?, dir, size)
}

/// [`load`] with another definition.
pub fn load_with(spec: Spec, dir: &Path, size: usize) -> Result<Emoji, EmojiError> {
    if size == 0 {
        return Err(EmojiError::Spec("image size 0".into()));
    }
    let items = catalogue(&spec, dir)?;
    let counts = Counts::of(&items, spec.classes.len());
    let mismatches = counts.mismatches(&spec);
    if !mismatches.0.is_empty() {
        return Err(EmojiError::Counts(mismatches));
    }
    let images = render_all(&items, &spec, size)?;
    let empty = Dataset { size, images: Vec::new(), labels: Vec::new(), styles: Vec::new() };
    let (mut train, mut test) = (empty.clone(), empty);
    for (item, image) in items.iter().zip(images) {
        let split = if item.test { &mut test } else { &mut train };
        split.images.push(image);
        split.labels.push(item.class);
        split.styles.push(item.style);
    }
    Ok(Emoji { spec, train, test, counts })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn picture(unified: &str, non_qualified: Option<&str>) -> Picture {
        Picture {
            unified: unified.into(),
            non_qualified: non_qualified.map(Into::into),
            image: format!("{}.png", unified.to_lowercase()),
            has_img_google: true,
            has_img_twitter: true,
        }
    }

    fn entry(unified: &str, sort_order: usize, tone_keys: &[&str]) -> Entry {
        let variations = tone_keys.iter().map(|k| (k.to_string(), picture(&format!("{unified}-{k}"), None)));
        Entry {
            picture: picture(unified, None),
            subcategory: "face-smiling".into(),
            sort_order,
            skin_variations: (!tone_keys.is_empty()).then(|| variations.collect()),
        }
    }

    #[test]
    fn the_split_hashes_the_upper_case_base_code() {
        // First bytes of sha256, by `printf %s CODE | sha256sum`: 1F44D 0d, 1F1E6-1F1FA 03,
        // 2764-FE0F 16 (= 22), 1F9D1-200D-1F4BB 21 (= 33), 1F600 a6, and lower-case 1f44d a6.
        for code in ["1F44D", "1F1E6-1F1FA", "2764-FE0F"] {
            assert!(is_test(code, 26), "{code} is held out");
        }
        for code in ["1F9D1-200D-1F4BB", "1F600", "1f44d"] {
            assert!(!is_test(code, 26), "{code} is for training");
        }
        assert!(!is_test("2764-FE0F", 22) && is_test("2764-FE0F", 23), "the threshold is strict");
    }

    #[test]
    fn the_skin_tone_is_sort_order_mod_5_under_its_own_key_or_doubled() {
        let tones = ["1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"];
        assert_eq!(skin_tone(372), "1F3FD");
        let santa = entry("1F385", 372, &tones);
        assert_eq!(tone_variation(&santa).unwrap().unwrap().unified, "1F385-1F3FD");
        // Two people: only doubled keys, so sort_order 510 (tone 1F3FB) takes 1F3FB-1F3FB.
        let couple = entry("1F46B", 510, &["1F3FB-1F3FB", "1F3FB-1F3FC", "1F3FC-1F3FC"]);
        assert_eq!(tone_variation(&couple).unwrap().unwrap().unified, "1F46B-1F3FB-1F3FB");
        assert!(tone_variation(&entry("1F600", 1, &[])).unwrap().is_none());
        let err = tone_variation(&entry("1F46B", 511, &["1F3FB-1F3FB"])).unwrap_err();
        assert!(matches!(err, EmojiError::NoTone { tone: "1F3FC", .. }), "{err}");
    }

    #[test]
    fn fluent_codes_are_tried_as_is_then_without_fe0f_then_without_leading_zeros() {
        assert_eq!(fluent_candidates("00A9-FE0F"), ["00a9-fe0f", "00a9", "a9-fe0f", "a9"].map(String::from));
        assert_eq!(fluent_candidates("0000-1F600")[2], "0-1f600");
        let assets = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<HashSet<_>>();
        let copyright = picture("00A9-FE0F", Some("00A9"));
        assert_eq!(find_fluent(&copyright, &assets(&["a9.webp", "00a9.webp"])).unwrap(), "00a9.webp");
        assert_eq!(find_fluent(&copyright, &assets(&["a9.webp", "a9-fe0f.webp"])).unwrap(), "a9-fe0f.webp");
        // Not under `unified` at all: `non_qualified` is tried next.
        let heart = picture("2764-FE0F", Some("2764-20E3"));
        assert_eq!(find_fluent(&heart, &assets(&["2764-20e3.webp"])).unwrap(), "2764-20e3.webp");
        assert_eq!(find_fluent(&heart, &assets(&["2765.webp"])), None);
    }

    #[test]
    fn the_classes_kept_unmirrored_are_classes_of_the_definition() {
        let spec = Spec::builtin().unwrap();
        assert!(UNMIRRORED.iter().all(|u| spec.class_ids().contains(u)), "{UNMIRRORED:?}");
        let (background, mirror) = crate::data::Source::Emoji.augment_rules().unwrap();
        assert_eq!(background, spec.background.to_vec());
        let kept: Vec<&str> =
            spec.classes.iter().zip(&mirror).filter(|(_, m)| !**m).map(|(c, _)| c.id.as_str()).collect();
        assert_eq!(kept, UNMIRRORED);
    }

    #[test]
    fn the_builtin_definition_has_twelve_classes_that_add_up_to_its_totals() {
        let spec = Spec::builtin().unwrap();
        assert_eq!(spec.classes.len(), 12);
        assert_eq!((spec.classes[0].id.as_str(), spec.classes[11].id.as_str()), ("faces", "flags"));
        assert_eq!(spec.background, [255, 255, 255]);
        let sum = |f: fn(&ClassSpec) -> usize| spec.classes.iter().map(f).sum::<usize>();
        assert_eq!((sum(|c| c.count), sum(|c| c.count_test)), (6575, 651));
        assert_eq!((spec.totals.images, spec.totals.test_images, spec.totals.emoji), (6575, 651, 1893));
        let fluent: usize = spec.classes.iter().map(|c| c.count_by_style[&Style::Fluent3d]).sum();
        assert_eq!(fluent, spec.totals.by_style[&Style::Fluent3d]);
    }

    #[test]
    fn a_subcategory_in_two_classes_is_refused() {
        let mut value: serde_json::Value = serde_json::from_str(CLASSES_JSON).unwrap();
        value["classes"][1]["subcategories"][0] = json!("face-smiling");
        let err = Spec::parse(&value.to_string()).unwrap_err();
        assert!(err.to_string().contains("face-smiling is in two classes"), "{err}");
    }

    /// A package tree under a fresh temporary directory, removed on drop.
    struct Tree(PathBuf);

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// A 2x2 PNG: one transparent pixel, three opaque of `rgb`.
    fn png_file(rgb: [u8; 3]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut enc = png::Encoder::new(&mut bytes, 2, 2);
        enc.set_color(png::ColorType::Rgba);
        let [r, g, b] = rgb;
        let pixels = [[0, 0, 0, 0], [r, g, b, 255], [r, g, b, 255], [r, g, b, 255]].concat();
        enc.write_header().unwrap().write_image_data(&pixels).unwrap();
        bytes
    }

    /// A lossless 1x4 WebP (not square: centred on the background), opaque `rgb`.
    fn webp_file(rgb: [u8; 3]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let pixels: Vec<u8> = std::iter::repeat_n([rgb[0], rgb[1], rgb[2], 255], 4).flatten().collect();
        let encoder = image_webp::WebPEncoder::new(&mut bytes);
        encoder.encode(&pixels, 1, 4, image_webp::ColorType::Rgba8).unwrap();
        bytes
    }

    /// Three emoji: 1F600 (class 0, all styles), 1F44D (class 1, a test emoji, tones: the base
    /// and 1F44D-1F3FD, no fluent file for the tone) and 1F3FB (a swatch: in no class).
    fn small_tree(name: &str) -> (Tree, Spec) {
        let root = std::env::temp_dir().join(format!("arpg-emoji-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let tree = Tree(root);
        let pic = |code: &str| json!({"unified": code, "non_qualified": null, "image": format!("{}.png", code.to_lowercase()), "has_img_google": true, "has_img_twitter": true});
        let mut thumbs = pic("1F44D");
        thumbs["subcategory"] = json!("hand-fingers-closed");
        thumbs["sort_order"] = json!(197); // 197 % 5 = 2: tone 1F3FD
        thumbs["skin_variations"] = json!({"1F3FB": pic("1F44D-1F3FB"), "1F3FD": pic("1F44D-1F3FD")});
        let mut grin = pic("1F600");
        grin["subcategory"] = json!("face-smiling");
        grin["sort_order"] = json!(1);
        let mut swatch = pic("1F3FB");
        swatch["subcategory"] = json!("skin-tone");
        swatch["sort_order"] = json!(0);
        let google = tree.0.join("emoji-datasource-google");
        write(&google.join("emoji.json"), json!([thumbs, swatch, grin]).to_string().as_bytes());
        for (code, rgb) in [("1f600", [200, 0, 0]), ("1f44d", [0, 200, 0]), ("1f44d-1f3fd", [0, 0, 200])] {
            write(&google.join(format!("img/google/64/{code}.png")), &png_file(rgb));
            write(
                &tree.0.join(format!("emoji-datasource-twitter/img/twitter/64/{code}.png")),
                &png_file(rgb),
            );
        }
        let assets = tree.0.join("@lobehub/fluent-emoji-3d/assets");
        write(&assets.join("1f600.webp"), &webp_file([10, 20, 30]));
        write(&assets.join("1f44d.webp"), &webp_file([40, 50, 60]));
        let mut spec: serde_json::Value = serde_json::from_str(CLASSES_JSON).unwrap();
        spec["classes"] = json!([
            {"id": "faces", "name": "F", "category": "C", "subcategories": ["face-smiling"],
             "count_by_style": {"google": 1, "twitter": 1, "fluent3d": 1}, "count": 3, "emoji": 1, "count_test": 0},
            {"id": "hands", "name": "H", "category": "C", "subcategories": ["hand-fingers-closed"],
             "count_by_style": {"google": 2, "twitter": 2, "fluent3d": 1}, "count": 5, "emoji": 1, "count_test": 5},
        ]);
        spec["totals"] = json!({"images": 8, "test_images": 5, "emoji": 2, "by_style": {"google": 3, "twitter": 3, "fluent3d": 2}});
        (tree, Spec::parse(&spec.to_string()).unwrap())
    }

    #[test]
    fn a_small_package_tree_gives_labels_splits_and_white_backgrounds() {
        let (tree, spec) = small_tree("load");
        let items = catalogue(&spec, &tree.0).unwrap();
        let codes: Vec<(&str, Style)> = items.iter().map(|i| (i.code.as_str(), i.style)).collect();
        use Style::*;
        let expected = [("1F600", Google), ("1F600", Twitter), ("1F600", Fluent3d), ("1F44D", Google)];
        assert_eq!(codes[..4], expected);
        assert_eq!(
            codes[4..],
            [("1F44D", Twitter), ("1F44D", Fluent3d), ("1F44D-1F3FD", Google), ("1F44D-1F3FD", Twitter)]
        );
        assert!(items.iter().all(|i| i.test == (i.base == "1F44D")));

        let data = load_with(spec, &tree.0, 2).unwrap();
        assert_eq!((data.train.len(), data.test.len()), (3, 5));
        assert_eq!((data.train.labels.clone(), data.test.labels.clone()), (vec![0; 3], vec![1; 5]));
        let first = &data.train.images[0];
        assert_eq!((first.width, first.height, first.channels), (2, 2, 3));
        assert_eq!(first.pixels, [[255, 255, 255], [200, 0, 0], [200, 0, 0], [200, 0, 0]].concat());
        // The 1x4 WebP in column 1 of a 4x4 white square (left margin 1, right 2), halved:
        // columns 0-1 give (255 + v) / 2 rounded up, columns 2-3 white.
        let fluent = &data.train.images[2];
        assert_eq!([fluent.get(0, 0), fluent.get(0, 1)], [[133, 138, 143], [133, 138, 143]]);
        assert_eq!([fluent.get(1, 0), fluent.get(1, 1)], [[255; 3], [255; 3]]);
        assert_eq!(data.test.styles, [Google, Twitter, Fluent3d, Google, Twitter]);
        assert_eq!(data.counts.emoji, [1, 1]);
    }

    #[test]
    fn counts_that_differ_from_the_definition_are_each_reported() {
        let (tree, mut spec) = small_tree("counts");
        spec.classes[1].count_test = 4;
        spec.totals.by_style.insert(Style::Fluent3d, 3);
        let Err(EmojiError::Counts(m)) = load_with(spec, &tree.0, 2) else { panic!("counts not checked") };
        assert_eq!(m.0, [("hands test images".to_string(), 4, 5), ("fluent3d".to_string(), 3, 2)]);
        assert_eq!(m.to_string(), "hands test images: expected 4, found 5; fluent3d: expected 3, found 2");
    }

    #[test]
    fn missing_packages_point_to_the_make_target() {
        let (tree, spec) = small_tree("missing");
        std::fs::remove_dir_all(tree.0.join("@lobehub")).unwrap();
        let err = load_with(spec.clone(), &tree.0, 2).unwrap_err();
        assert!(matches!(&err, EmojiError::Missing { path } if path.ends_with("assets")), "{err}");
        assert!(err.to_string().contains("make emoji-data"), "{err}");
        let err = load(&tree.0.join("nowhere"), 64).unwrap_err();
        assert!(matches!(&err, EmojiError::Missing { path } if path.ends_with("emoji.json")), "{err}");
    }

    fn digest(data: &Emoji) -> String {
        let mut hash = Sha256::new();
        for image in data.train.images.iter().chain(&data.test.images) {
            hash.update(&image.pixels);
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The real packages (`make emoji-data`), when installed: the counts of the definition, and
    /// pixels identical to a Pillow 9.4 rendering by the same rules (sha256 of every image's
    /// pixels, train then test, taken from that rendering).
    #[test]
    fn the_installed_packages_give_the_defined_dataset_pixel_for_pixel() {
        let Some(dir) = default_dir().filter(|d| d.is_dir()) else {
            eprintln!(
                "note: no $HOME/.cache/arpg/emoji (run `make emoji-data`): skipping the full emoji load"
            );
            return;
        };
        let data = load(&dir, 64).unwrap();
        assert_eq!((data.train.len(), data.test.len()), (5924, 651));
        for (c, class) in data.spec.classes.iter().enumerate() {
            assert_eq!(data.counts.by_style[c], class.count_by_style, "{}", class.id);
            let test = data.test.labels.iter().filter(|&&l| l as usize == c).count();
            assert_eq!(test, class.count_test, "{}", class.id);
        }
        assert!(data.train.images.iter().all(|i| (i.width, i.height, i.channels) == (64, 64, 3)));
        assert_eq!(digest(&data), "70d911cf55a6f589617ba7b3930d3af363b6aae447815f703afd72553e8a96d2");
        let small = load(&dir, 32).unwrap();
        assert_eq!(digest(&small), "cc5db1a4be65fcb63f13a125cdac24e75796c31552b78dc6af9e74171da14e70");
    }
}
