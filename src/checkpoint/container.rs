//! The one container every ARPG file uses: checkpoints (`.arpg`), the evaluation classifier and
//! the training state. Each kind has its magic, its version and a fixed-size block of its own
//! fields; the rest is common. Little-endian throughout:
//!
//! ```text
//! magic[8] | u16 version | u8 dtype (0 = f32, 1 = int8) | u32 group size (int8: > 0; f32: 0)
//! | the kind's fields (fixed size) | u32 tensor count | u32 metadata length | metadata
//! | tensor table | payloads | SHA-256 of everything before it
//! ```
//!
//! * **tensor table**, one entry per tensor: name (`u16` length + UTF-8), rank (`u8`, at most 4),
//!   dims (`u32` each).
//! * **payloads** in table order. f32: the values. int8: for each group of `group size`
//!   consecutive values (the last one may be shorter), one `f32` scale (`max |x| / 127`,
//!   symmetric) followed by the group's `i8` values; a value is restored as `q * scale`.
//!
//! The reader checks size, magic and version, then the checksum, then parses. It never panics and
//! never allocates more than the input could hold: payload sizes are computed with checked
//! arithmetic and compared to the bytes left before any tensor is allocated. A NaN or infinite
//! weight is refused on write and on read.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::CheckpointError;
use crate::choice::Choice;

type Result<T> = std::result::Result<T, CheckpointError>;

pub const CHECKSUM_LEN: usize = 32;
pub const MAX_RANK: usize = 4;
/// Magic, version, dtype and group size: the bytes before a kind's fields.
pub const PREFIX_LEN: usize = 8 + 2 + 1 + 4;

/// A kind of file: its magic, the version this build reads and writes, and its fields' size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub magic: &'static [u8; 8],
    pub version: u16,
    pub fields_len: usize,
    /// For messages: "checkpoint", "classifier file", ...
    pub name: &'static str,
}

impl Kind {
    /// Bytes before the metadata: prefix, fields, tensor count and metadata length.
    pub const fn header_len(&self) -> usize {
        PREFIX_LEN + self.fields_len + 8
    }
}

/// A tensor by name, row-major f32 values.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Where a module's weights are taken from, one tensor at a time, by name (`weights::import`):
/// tensors already in memory, or a file read on demand ([`Stream`]), so that loading holds the
/// weights in their runtime form plus one tensor.
pub trait TensorSource {
    /// The tensor `name`, its values moved out of the source (or read now); `None` when absent.
    fn take(&mut self, name: &str) -> Result<Option<NamedTensor>>;
}

impl TensorSource for [NamedTensor] {
    fn take(&mut self, name: &str) -> Result<Option<NamedTensor>> {
        Ok(self.iter_mut().find(|t| t.name == name).map(|t| NamedTensor {
            name: t.name.clone(),
            shape: t.shape.clone(),
            data: std::mem::take(&mut t.data),
        }))
    }
}

impl TensorSource for Vec<NamedTensor> {
    fn take(&mut self, name: &str) -> Result<Option<NamedTensor>> {
        TensorSource::take(self.as_mut_slice(), name)
    }
}

/// How tensor payloads are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    /// Symmetric int8 with one f32 scale per group of values.
    Int8,
}

impl DType {
    pub fn id(self) -> u8 {
        match self {
            DType::F32 => 0,
            DType::Int8 => 1,
        }
    }

    pub fn from_id(id: u8) -> Option<DType> {
        DType::ALL.iter().copied().find(|d| d.id() == id)
    }
}

impl Choice for DType {
    const ALL: &'static [Self] = &[DType::F32, DType::Int8];
    const WHAT: &'static str = "dtype";
    fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::Int8 => "int8",
        }
    }
}

crate::from_str_by_name!(DType);

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------- writing

/// Appends little-endian fields to a byte buffer (a kind's fields and metadata are built with it).
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A size field; panics if it does not fit the format's u32.
    pub fn size(&mut self, v: usize, what: &str) {
        let v = u32::try_from(v).unwrap_or_else(|_| panic!("{what} = {v} does not fit in u32"));
        self.u32(v);
    }
    /// A string: `u16` byte length, then UTF-8.
    pub fn str(&mut self, s: &str) {
        let len =
            u16::try_from(s.len()).unwrap_or_else(|_| panic!("string of {} bytes is too long", s.len()));
        self.u16(len);
        self.0.extend_from_slice(s.as_bytes());
    }
    /// A byte string: `u64` length, then the bytes.
    pub fn blob(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
}

/// Symmetric int8 scale of one group: `max |x| / 127`. Near the top of the f32 range
/// `127 * (max / 127)` can round past `f32::MAX`, which would restore as infinity: there the scale
/// goes down by an ulp or two (the largest value then clamps to 127 steps).
pub(crate) fn group_scale(group: &[f32]) -> f32 {
    let mut scale = group.iter().fold(0.0f32, |m, x| m.max(x.abs())) / 127.0;
    while !(scale * 127.0).is_finite() {
        scale = scale.next_down();
    }
    scale
}

fn quantize(x: f32, scale: f32) -> i8 {
    if scale > 0.0 { (x / scale).round().clamp(-127.0, 127.0) as i8 } else { 0 }
}

/// Serialises one file of `kind`. `group_size` is used for `DType::Int8` only (an f32 file
/// stores 0). A tensor holding a NaN or infinity is refused.
///
/// # Panics
/// On values the format cannot hold, which are programming errors: `fields` of another size than
/// the kind's, a tensor whose data length is not the product of its shape, rank > 4, a size over
/// `u32::MAX`, a string over 65535 bytes, or int8 with `group_size == 0`.
pub fn write(
    kind: &Kind,
    dtype: DType,
    group_size: usize,
    fields: &[u8],
    meta: &[u8],
    tensors: &[NamedTensor],
) -> Result<Vec<u8>> {
    let values: usize = tensors.iter().map(|t| t.data.len()).sum();
    let mut out = Vec::with_capacity(kind.header_len() + meta.len() + 4 * values + CHECKSUM_LEN);
    write_to(&mut out, kind, dtype, group_size, fields, meta, tensors)?;
    Ok(out)
}

/// [`write`] into `out` as it goes (a file: no second copy of the weights in memory). An I/O
/// error is [`CheckpointError::Io`]; nothing is written when a tensor is not finite.
///
/// # Panics
/// As [`write`].
pub fn write_to(
    out: impl std::io::Write,
    kind: &Kind,
    dtype: DType,
    group_size: usize,
    fields: &[u8],
    meta: &[u8],
    tensors: &[NamedTensor],
) -> Result<()> {
    assert_eq!(fields.len(), kind.fields_len, "{} fields", kind.name);
    let group_size = match dtype {
        DType::F32 => 0,
        DType::Int8 => {
            assert!(group_size > 0, "int8 group size must be > 0");
            group_size
        }
    };
    if let Some(t) = tensors.iter().find(|t| t.data.iter().any(|x| !x.is_finite())) {
        return Err(CheckpointError::NonFinite { tensor: t.name.clone() });
    }
    let mut out = Hashing { out, sha: Sha256::new() };
    let mut w = Writer::default();
    w.0.extend_from_slice(kind.magic);
    w.u16(kind.version);
    w.u8(dtype.id());
    w.size(group_size, "group_size");
    w.0.extend_from_slice(fields);
    w.size(tensors.len(), "tensor count");
    w.size(meta.len(), "metadata length");
    w.0.extend_from_slice(meta);
    for tensor in tensors {
        let numel: usize = tensor.shape.iter().product();
        assert_eq!(numel, tensor.data.len(), "tensor '{}': data does not match its shape", tensor.name);
        assert!(tensor.shape.len() <= MAX_RANK, "tensor '{}': rank > {MAX_RANK}", tensor.name);
        w.str(&tensor.name);
        w.u8(tensor.shape.len() as u8);
        for &d in &tensor.shape {
            w.size(d, "tensor dim");
        }
    }
    out.put(&w.0)?;
    for tensor in tensors {
        // One tensor's bytes at a time.
        let mut w = Writer::default();
        match dtype {
            DType::F32 => tensor.data.iter().for_each(|&x| w.f32(x)),
            DType::Int8 => {
                for group in tensor.data.chunks(group_size) {
                    let scale = group_scale(group);
                    w.f32(scale);
                    w.0.extend(group.iter().map(|&x| quantize(x, scale) as u8));
                }
            }
        }
        out.put(&w.0)?;
    }
    let checksum = out.sha.finalize();
    out.out.write_all(&checksum).map_err(io_error)?;
    out.out.flush().map_err(io_error)
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    out: W,
    sha: Sha256,
}

impl<W: std::io::Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.sha.update(bytes);
        self.out.write_all(bytes).map_err(io_error)
    }
}

fn io_error(e: std::io::Error) -> CheckpointError {
    CheckpointError::Io(e.to_string())
}

// ---------------------------------------------------------------- reading

/// Reads little-endian fields from the front of a slice, with bounds checks.
pub struct Reader<'a> {
    rest: &'a [u8],
    section: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `bytes`, naming `section` in errors.
    pub fn new(bytes: &'a [u8], section: &'static str) -> Self {
        Self { rest: bytes, section }
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n).ok_or(CheckpointError::Truncated {
            section: self.section,
            needed: n,
            available: self.rest.len(),
        })?;
        self.rest = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let head = self.take(N)?;
        Ok(head.try_into().expect("N bytes"))
    }
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16> {
        self.array().map(u16::from_le_bytes)
    }
    pub fn u32(&mut self) -> Result<u32> {
        self.array().map(u32::from_le_bytes)
    }
    pub fn u64(&mut self) -> Result<u64> {
        self.array().map(u64::from_le_bytes)
    }
    pub fn f32(&mut self) -> Result<f32> {
        self.array().map(f32::from_le_bytes)
    }
    /// A u32 size field as usize (cannot fail on 32/64-bit targets).
    pub fn size(&mut self) -> Result<usize> {
        let v = self.u32()?;
        usize::try_from(v).map_err(|_| CheckpointError::SizeOverflow { what: self.section.to_string() })
    }
    pub fn str(&mut self) -> Result<String> {
        let len = usize::from(self.u16()?);
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| CheckpointError::BadUtf8 { section: self.section })?;
        Ok(s.to_string())
    }
    /// A byte string written by [`Writer::blob`].
    pub fn blob(&mut self) -> Result<&'a [u8]> {
        let len = self.u64()?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.take(len)
    }
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<()> {
        match self.rest.len() {
            0 => Ok(()),
            count => Err(CheckpointError::TrailingBytes { count, section: self.section }),
        }
    }
}

/// `(name, shape)` of each tensor, in file order.
pub type Table = Vec<(String, Vec<usize>)>;

/// A verified file with its payloads still encoded.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub version: u16,
    pub dtype: DType,
    pub group_size: usize,
    /// The kind's fields, `kind.fields_len` bytes.
    pub fields: &'a [u8],
    pub meta: &'a [u8],
    n_tensors: u32,
    /// The tensor table and the payloads, parsed on demand ([`Parsed::table`]) so that a kind
    /// checks its own fields and metadata first. A file read in two passes ([`Stream`]) holds
    /// only their first bytes here.
    rest: &'a [u8],
    /// The bytes of the table and the payloads in the file (`rest.len()` for a whole file).
    rest_len: usize,
    /// The SHA-256 stored at the end (verified).
    pub checksum: &'a [u8],
}

/// Bytes a tensor of `numel` values takes in the payload section.
fn payload_len(numel: usize, dtype: DType, group_size: usize) -> Option<usize> {
    match dtype {
        DType::F32 => numel.checked_mul(4),
        DType::Int8 => numel.div_ceil(group_size).checked_mul(4)?.checked_add(numel),
    }
}

/// Verifies a file of `kind` and splits it into its sections, without decoding the payloads.
pub fn read<'a>(kind: &Kind, bytes: &'a [u8]) -> Result<Parsed<'a>> {
    check_prefix(kind, bytes, bytes.len())?;
    // Checksum before trusting any other field.
    let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if Sha256::digest(body).as_slice() != checksum {
        return Err(CheckpointError::BadChecksum { kind: kind.name });
    }
    parse(kind, body, body.len(), checksum)
}

/// What is checked before the checksum: the file's length, then magic and version in its first
/// bytes `head` (which hold at least the header when the file is long enough).
fn check_prefix(kind: &Kind, head: &[u8], len: usize) -> Result<()> {
    let min = kind.header_len() + CHECKSUM_LEN;
    if len < min {
        return Err(CheckpointError::TooShort { kind: kind.name, len, min });
    }
    if head[..8] != kind.magic[..] {
        return Err(CheckpointError::BadMagic { kind: kind.name });
    }
    let found = u16::from_le_bytes([head[8], head[9]]);
    if found != kind.version {
        return Err(CheckpointError::UnsupportedVersion { kind: kind.name, found, reads: kind.version });
    }
    Ok(())
}

/// The sections of a verified file from `head`, its first bytes (all of the body, or at least
/// through the tensor table), and `body_len`, the file's length without the checksum.
fn parse<'a>(kind: &Kind, head: &'a [u8], body_len: usize, checksum: &'a [u8]) -> Result<Parsed<'a>> {
    let version = u16::from_le_bytes([head[8], head[9]]);
    let mut r = Reader::new(&head[10..], "header");
    let dtype_id = r.u8()?;
    let dtype = DType::from_id(dtype_id).ok_or(CheckpointError::BadDType(dtype_id))?;
    let group_size = r.size()?;
    if (dtype == DType::Int8) != (group_size > 0) {
        return Err(CheckpointError::BadGroupSize { dtype, group_size });
    }
    let fields = r.take(kind.fields_len)?;
    let n_tensors = r.u32()?;
    let meta_len = r.size()?;
    r.section = "metadata";
    let meta = r.take(meta_len)?;
    let rest_len = body_len - (head.len() - r.rest.len());
    Ok(Parsed { version, dtype, group_size, fields, meta, n_tensors, rest: r.rest, rest_len, checksum })
}

/// The tensor table and the payload bytes it declares. No pre-allocation from `n_tensors`: each
/// entry consumes input bytes, so a huge count runs into `Truncated` long before memory matters.
fn read_table(r: &mut Reader, n_tensors: u32, dtype: DType, group_size: usize) -> Result<(Table, usize)> {
    let mut table = Vec::new();
    let mut seen = HashSet::new();
    let mut payload_total = 0usize;
    for _ in 0..n_tensors {
        let name = r.str()?;
        let rank = r.u8()?;
        if usize::from(rank) > MAX_RANK {
            return Err(CheckpointError::RankTooLarge { tensor: name, rank });
        }
        let mut shape = Vec::with_capacity(usize::from(rank));
        for _ in 0..rank {
            shape.push(r.size()?);
        }
        let total = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .and_then(|numel| payload_len(numel, dtype, group_size))
            .and_then(|len| payload_total.checked_add(len));
        payload_total =
            total.ok_or_else(|| CheckpointError::SizeOverflow { what: format!("tensor '{name}'") })?;
        if !seen.insert(name.clone()) {
            return Err(CheckpointError::DuplicateTensor(name));
        }
        table.push((name, shape));
    }
    Ok((table, payload_total))
}

impl<'a> Parsed<'a> {
    /// The tensor table, checked to declare exactly the payload bytes present.
    pub fn table(&self) -> Result<Table> {
        self.split().map(|(table, _)| table)
    }

    /// The table and its length in bytes (the payloads follow it).
    fn split(&self) -> Result<(Table, usize)> {
        let mut r = Reader::new(self.rest, "tensor table");
        let (table, payload_total) = read_table(&mut r, self.n_tensors, self.dtype, self.group_size)?;
        let table_len = self.rest.len() - r.rest.len();
        let payload = self.rest_len - table_len;
        if payload_total > payload {
            return Err(CheckpointError::DeclaredSizeTooLarge {
                declared: payload_total,
                available: payload,
            });
        }
        if payload_total < payload {
            let count = payload - payload_total;
            return Err(CheckpointError::TrailingBytes { count, section: "tensor payloads" });
        }
        Ok((table, table_len))
    }

    /// The tensors in f32 (int8 dequantized); a NaN or infinite value or scale is refused.
    pub fn tensors(&self) -> Result<Vec<NamedTensor>> {
        let (table, table_len) = self.split()?;
        self.decode(&table, &mut &self.rest[table_len..])
    }

    /// The tensors of `table`, their payloads read from `payloads` one tensor at a time.
    fn decode(&self, table: &Table, payloads: &mut impl std::io::Read) -> Result<Vec<NamedTensor>> {
        table.iter().map(|(name, shape)| self.decode_one(name, shape, payloads)).collect()
    }

    /// One tensor of the table, its payload read from `payload` (sizes were checked against the
    /// file in `split`, so its allocation is bounded).
    fn decode_one(
        &self,
        name: &str,
        shape: &[usize],
        payload: &mut impl std::io::Read,
    ) -> Result<NamedTensor> {
        let numel: usize = shape.iter().product();
        let mut bytes = vec![0; payload_len(numel, self.dtype, self.group_size).expect("checked in split")];
        payload.read_exact(&mut bytes).map_err(io_error)?;
        let mut r = Reader::new(&bytes, "tensor payloads");
        let mut data = Vec::with_capacity(numel);
        let non_finite = || CheckpointError::NonFinite { tensor: name.to_string() };
        match self.dtype {
            DType::F32 => {
                for _ in 0..numel {
                    data.push(r.f32()?);
                }
            }
            DType::Int8 => {
                while data.len() < numel {
                    let n = self.group_size.min(numel - data.len());
                    let scale = r.f32()?;
                    if !scale.is_finite() {
                        return Err(non_finite());
                    }
                    data.extend(r.take(n)?.iter().map(|&q| f32::from(q as i8) * scale));
                }
            }
        }
        if data.iter().any(|x| !x.is_finite()) {
            return Err(non_finite());
        }
        Ok(NamedTensor { name: name.to_string(), shape: shape.to_vec(), data })
    }
}

/// A file read in two passes, never whole in memory: the checksum over all of it first, then its
/// head (header, metadata, tensor table) is kept and the payloads are read one tensor at a time,
/// in file order ([`Stream::tensors`]) or by name (its [`TensorSource`]). A model of a few GB
/// loads with about its weights' size in memory.
pub struct Stream<R> {
    file: R,
    /// The file's first bytes, through the tensor table at least.
    head: Vec<u8>,
    /// The file's length without the checksum.
    body_len: usize,
    checksum: [u8; CHECKSUM_LEN],
    /// SHA-256 of the whole file (what `sha256sum` prints).
    pub file_sha256: [u8; 32],
    kind: &'static Kind,
    /// The tensor table, and where each tensor's payload starts in the file: made when first
    /// needed, so that a kind checks its header before the table (as [`read`] does).
    index: Option<(Table, Vec<usize>)>,
}

/// Bytes of a file's head read at first; a longer tensor table makes it grow.
const HEAD_READ: usize = 64 * 1024;

impl<R: std::io::Read + std::io::Seek> Stream<R> {
    /// Verifies `file`, a file of the kind `kind_of` names from its first bytes.
    pub fn open(mut file: R, kind_of: impl Fn(&[u8]) -> &'static Kind) -> Result<Self> {
        use std::io::SeekFrom;
        let len = file.seek(SeekFrom::End(0)).map_err(io_error)?;
        let len = usize::try_from(len).map_err(|_| CheckpointError::SizeOverflow { what: "file".into() })?;
        let mut head = read_at(&mut file, 0, len.min(HEAD_READ))?;
        let kind = kind_of(&head);
        check_prefix(kind, &head, len)?;
        let body_len = len - CHECKSUM_LEN;
        head.truncate(body_len); // the checksum is not part of the head
        let (body_sha, file_sha256) = hash(&mut file, body_len)?;
        let checksum: [u8; CHECKSUM_LEN] =
            read_at(&mut file, body_len, CHECKSUM_LEN)?.try_into().expect("32 bytes");
        if body_sha != checksum {
            return Err(CheckpointError::BadChecksum { kind: kind.name });
        }
        // The head must hold the tensor table: read more until it does (or the error is not one
        // of a short head).
        loop {
            let short = matches!(
                parse(kind, &head, body_len, &checksum).and_then(|p| p.split()),
                Err(CheckpointError::Truncated { .. })
            );
            if !short || head.len() >= body_len {
                break;
            }
            head = read_at(&mut file, 0, (head.len() * 4).min(body_len))?;
        }
        Ok(Stream { file, head, body_len, checksum, file_sha256, kind, index: None })
    }

    /// The file's length in bytes.
    pub fn file_len(&self) -> usize {
        self.body_len + CHECKSUM_LEN
    }

    /// The file's sections (payloads not read yet).
    pub fn parsed(&self) -> Result<Parsed<'_>> {
        parse(self.kind, &self.head, self.body_len, &self.checksum)
    }

    /// The tensors, read from the file one at a time (as [`Parsed::tensors`]).
    pub fn tensors(&mut self) -> Result<Vec<NamedTensor>> {
        let parsed = parse(self.kind, &self.head, self.body_len, &self.checksum)?;
        let (table, offsets) = index(&mut self.index, &parsed, self.head.len())?;
        let start = offsets.first().copied().unwrap_or(self.body_len);
        self.file.seek(std::io::SeekFrom::Start(start as u64)).map_err(io_error)?;
        parsed.decode(table, &mut std::io::BufReader::new(&mut self.file))
    }
}

/// A [`Stream`]'s index, made on first use from its `parsed` head of `head_len` bytes: the tensor
/// table and where each tensor's payload starts (checked against the file's length by `split`).
fn index<'a>(
    index: &'a mut Option<(Table, Vec<usize>)>,
    parsed: &Parsed,
    head_len: usize,
) -> Result<&'a (Table, Vec<usize>)> {
    if index.is_none() {
        let (table, table_len) = parsed.split()?;
        let mut at = head_len - parsed.rest.len() + table_len;
        let mut offsets = Vec::with_capacity(table.len());
        for (_, shape) in &table {
            offsets.push(at);
            at += payload_len(shape.iter().product(), parsed.dtype, parsed.group_size)
                .expect("checked in split");
        }
        *index = Some((table, offsets));
    }
    Ok(index.as_ref().expect("just made"))
}

impl<R: std::io::Read + std::io::Seek> TensorSource for Stream<R> {
    fn take(&mut self, name: &str) -> Result<Option<NamedTensor>> {
        let parsed = parse(self.kind, &self.head, self.body_len, &self.checksum)?;
        let (table, offsets) = index(&mut self.index, &parsed, self.head.len())?;
        let Some(i) = table.iter().position(|(n, _)| n == name) else { return Ok(None) };
        self.file.seek(std::io::SeekFrom::Start(offsets[i] as u64)).map_err(io_error)?;
        parsed.decode_one(name, &table[i].1, &mut self.file).map(Some)
    }
}

/// `len` bytes of `file` from `offset`.
fn read_at(file: &mut (impl std::io::Read + std::io::Seek), offset: usize, len: usize) -> Result<Vec<u8>> {
    file.seek(std::io::SeekFrom::Start(offset as u64)).map_err(io_error)?;
    let mut bytes = vec![0; len];
    file.read_exact(&mut bytes).map_err(io_error)?;
    Ok(bytes)
}

/// SHA-256 of the first `body_len` bytes of `file` and of all of it, in one pass.
fn hash(file: &mut (impl std::io::Read + std::io::Seek), body_len: usize) -> Result<([u8; 32], [u8; 32])> {
    file.seek(std::io::SeekFrom::Start(0)).map_err(io_error)?;
    let (mut body, mut whole) = (Sha256::new(), Sha256::new());
    let mut buf = vec![0; 1 << 20];
    let mut at = 0;
    loop {
        let n = file.read(&mut buf).map_err(io_error)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        body.update(&chunk[..n.min(body_len.saturating_sub(at))]);
        whole.update(chunk);
        at += n;
    }
    Ok((body.finalize().into(), whole.finalize().into()))
}
