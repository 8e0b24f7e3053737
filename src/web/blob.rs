//! A `Blob` (a `File` the user picked, or one kept in the origin-private file system) as a
//! synchronous `Read + Seek`, so that the library's two-pass checkpoint reader
//! (`checkpoint::container::Stream`) reads a model of any size without the file's bytes ever being
//! whole in memory: each read copies one slice of the blob into wasm memory.
//!
//! `FileReaderSync` exists only in workers, which is where the engine runs (worker.js). Reads of
//! tensor payloads come whole (one read per tensor), the checksum pass in 1 MiB reads.
//!
//! Progress: `on_progress(bytes)` is called with the bytes read so far (both passes counted, so a
//! load reads about twice the file), at most every `PROGRESS_EVERY` bytes and at the end.

use js_sys::{Function, Uint8Array};
use wasm_bindgen::JsValue;
use web_sys::{Blob, FileReaderSync};

use super::convert::js_text;

/// Bytes between two progress calls.
const PROGRESS_EVERY: u64 = 8 << 20;

pub struct BlobReader {
    blob: Blob,
    reader: FileReaderSync,
    len: u64,
    pos: u64,
    /// Bytes read so far, over every pass.
    read: u64,
    reported: u64,
    on_progress: Option<Function>,
}

impl BlobReader {
    pub fn new(blob: Blob, on_progress: Option<Function>) -> Result<Self, JsValue> {
        let len = blob.size() as u64;
        Ok(BlobReader {
            blob,
            reader: FileReaderSync::new()?,
            len,
            pos: 0,
            read: 0,
            reported: 0,
            on_progress,
        })
    }

    fn report(&mut self, force: bool) {
        if let Some(f) = &self.on_progress
            && (force || self.read - self.reported >= PROGRESS_EVERY)
        {
            self.reported = self.read;
            // A throwing callback is the page's bug; it must not fail the load.
            let _ = f.call1(&JsValue::NULL, &JsValue::from_f64(self.read as f64));
        }
    }

    /// Bytes read so far, over every pass; reports them.
    pub fn finish(&mut self) -> u64 {
        self.report(true);
        self.read
    }
}

fn io_error(e: JsValue) -> std::io::Error {
    std::io::Error::other(js_text(&e))
}

impl std::io::Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos));
        if n == 0 {
            return Ok(0);
        }
        let slice =
            self.blob.slice_with_f64_and_f64(self.pos as f64, (self.pos + n) as f64).map_err(io_error)?;
        let bytes = Uint8Array::new(&self.reader.read_as_array_buffer(&slice).map_err(io_error)?.into());
        // A file changed on disk since it was picked reads short: an error, never a silent gap.
        if u64::from(bytes.length()) != n {
            return Err(std::io::Error::other("the file changed while it was read"));
        }
        bytes.copy_to(&mut buf[..n as usize]);
        self.pos += n;
        self.read += n;
        self.report(false);
        Ok(n as usize)
    }
}

impl std::io::Seek for BlobReader {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        use std::io::SeekFrom;
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| std::io::Error::other("seek before the start of the file"))?;
        Ok(self.pos)
    }
}
