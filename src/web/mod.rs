//! The browser edge: the wasm-bindgen surface over `Engine`, meant to live in a Web Worker. This
//! file is that surface (what JS sees; only `encodePng` is elsewhere, in `png`, which one build
//! leaves out), and nothing else: the work is in the modules:
//!
//! * `convert`: JS values in and out (options, images, masks, classes, sides, signal).
//! * `scheduler`: the step hook (progress to JS, a yield to the event loop, cancellation).
//! * `adapter`: the WebGPU adapter probe, what counts as a software adapter, the backend choice.
//! * `error`: `WebError`, the edge's error type; it leaves as a `JsError` with its message.
//! * `png`: `encodePng`, the pages' PNG downloads (CPU build only).
//!
//! The surface:
//!
//! * `WebEngine.load(bytes, sha256, backend)` checks the checkpoint's sha256, picks the backend
//!   (`"auto"`, `"webgpu"` or `"cpu"`, see `adapter`) and loads the weights.
//!   `WebEngine.open(blob, sha256, backend, onProgress)` does the same from a `Blob` (a picked
//!   `File`, or one in the origin-private file system) read a slice at a time (`blob`), so a large
//!   model never sits in memory whole; `inspectCheckpoint(blob, onProgress)` verifies such a file
//!   (checksum, header, configs) and describes it without loading it. `info()` says which
//!   backend and why, with the adapter's `GPUAdapterInfo`, and the model's sampling defaults per
//!   task (its checkpoint's, else the library's): a job's options that JS leaves out take those.
//! * `generate`, `inpaint`, `outpaint`, `expand`, `encode`, `decode` return Promises; bad arguments
//!   throw at once. GPU data is only read back asynchronously (the engine is async).
//! * Every job takes a step callback and an optional `AbortSignal` (see `scheduler`). The callback
//!   gets `{step, steps, positions, gridH, gridW, tokens}` (`tokens`: the first image's grid, -1
//!   where not decoded yet). `patches(codes)` gives one small pixel patch per code so that the
//!   page can paint a preview of the grid so far from those tokens.
//! * `detectAdapter()`: the adapter and the runtime's `software` verdict, before any model loads.
//! * `encodePng(image, texts)`: PNG bytes of an image with text chunks (the pages' downloads),
//!   written by the library's PNG writer; it needs no model. Only `pkg/cpu` has it (see `png`).
//! * Two builds: with the `webgpu` feature (`pkg/gpu`) and without (`pkg/cpu`, the CPU backend only,
//!   a fraction of the size); the worker fetches the one it will use.
//!
//! Images are `{width, height, pixels}`, 8-bit grey (see `convert`).

mod adapter;
mod blob;
mod convert;
mod error;
// The pages encode with the CPU build whichever backend runs the model: see `png`.
#[cfg(not(feature = "webgpu"))]
mod png;
mod scheduler;

use std::future::Future;
use std::rc::Rc;

use js_sys::{Function, Promise, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use web_sys::Blob;

use self::adapter::{AdapterInfo, Backend};
use self::blob::BlobReader;
use self::convert::{
    JsSampling, class_from_js, classes_from_js, image_from_js, image_to_js, images_to_js, mask_from_js,
    options_from_js, sides_from_js, signal_from_js, tokens_to_js,
};
use self::error::WebError;
use self::scheduler::step_hook;
use crate::checkpoint::{self, CheckpointFile, sha256_hex};
use crate::choice::Choice;
use crate::engine::{Engine, MAX_CELLS};
use crate::image::Image;
use crate::sampling::{SampleOptions, Task};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The adapter the browser offers, as `{vendor, architecture, device, description,
/// isFallbackAdapter, software}`, or `null` when it has none (or no WebGPU at all).
#[wasm_bindgen(js_name = detectAdapter)]
pub async fn detect_adapter() -> Result<JsValue, JsError> {
    match adapter::probe().await? {
        Some(info) => Ok(serde_wasm_bindgen::to_value(&info).map_err(WebError::from)?),
        None => Ok(JsValue::NULL),
    }
}

/// What `inspectCheckpoint` says of a verified checkpoint file: what the page lists beside it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileInfo {
    /// SHA-256 of the whole file, lower-case hex.
    sha256: String,
    bytes: usize,
    /// "f32" or "int8".
    dtype: String,
    arch: String,
    params: f64,
    n_classes: usize,
    /// The side of the pictures the model makes (as `info().imageSize`).
    image_size: usize,
    /// 1 (grey) or 3 (RGB).
    channels: usize,
}

/// Verify a checkpoint file (a `Blob`) without loading it: its checksum (one pass over the file,
/// `onProgress(bytesRead)` as it goes), header and configs -> `{sha256, bytes, dtype, arch,
/// params, nClasses, imageSize, channels}`. Throws the reader's message (not a checkpoint,
/// truncated, corrupted, an invalid config).
#[wasm_bindgen(js_name = inspectCheckpoint)]
pub fn inspect_checkpoint(file: Blob, on_progress: Option<Function>) -> Result<JsValue, JsError> {
    let mut reader = BlobReader::new(file, on_progress).map_err(WebError::from_js)?;
    let CheckpointFile { info, sha256, .. } =
        CheckpointFile::open(&mut reader).map_err(crate::error::Error::from)?;
    reader.finish();
    let out = FileInfo {
        sha256,
        bytes: info.bytes,
        dtype: info.dtype.to_string(),
        arch: info.model.arch.name().to_string(),
        params: info.num_params() as f64,
        n_classes: info.model.n_classes,
        image_size: info.tokenizer.image_size(),
        channels: info.tokenizer.image_channels(),
    };
    Ok(serde_wasm_bindgen::to_value(&out).map_err(WebError::from)?)
}

/// The most f32 weights the CPU backend takes: wasm32 addresses 4 GiB, and a job needs room
/// beside the weights (ARPG-XL's 3.16 GB of weights ran in 3.34 GiB of wasm memory:
/// docs/performance.md).
const MAX_CPU_WEIGHT_BYTES: u64 = 3 << 30;

/// On the CPU backend the weights live in this module's memory as f32: refuse, before reading
/// them, a model that cannot fit there. `why_cpu`: why the CPU runs it (the backend's reason).
fn fits_wasm_memory(info: &checkpoint::CheckpointInfo, why_cpu: &str) -> Result<(), WebError> {
    let params = info.num_params();
    if params * 4 <= MAX_CPU_WEIGHT_BYTES {
        return Ok(());
    }
    Err(WebError::TooLarge { params, max: MAX_CPU_WEIGHT_BYTES, why_cpu: why_cpu.to_string() })
}

/// A job as a Promise: resolves to its value, rejects with its error's message.
fn promise(job: impl Future<Output = Result<JsValue, WebError>> + 'static) -> Promise {
    wasm_bindgen_futures::future_to_promise(async move { job.await.map_err(|e| JsError::from(e).into()) })
}

/// What `info()` returns.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EngineInfo {
    /// "webgpu" or "cpu": what runs.
    backend: &'static str,
    /// What was asked for: "auto", "webgpu" or "cpu".
    requested: String,
    /// Why this backend, in words (shown to the user).
    reason: String,
    /// The WebGPU adapter the browser offered, if it did.
    adapter: Option<AdapterInfo>,
    checksum: String,
    arch: String,
    class_names: Vec<String>,
    n_classes: usize,
    image_size: usize,
    /// 1 (grey) or 3 (RGB).
    channels: usize,
    /// The training pictures' background, one value per channel: what a smaller picture is
    /// framed on (`Engine::background`).
    background: Vec<u8>,
    /// Pixels per token side.
    factor: usize,
    grid_h: usize,
    grid_w: usize,
    codebook_size: usize,
    /// Whether the model also learned the half grid (multi-scale): `expand` 2x of an image of
    /// half the frame is then the task it trained on.
    multi_scale: bool,
    /// The most tokens one job may decode (`engine::MAX_CELLS`).
    max_cells: usize,
    /// The model's sampling defaults per task (`generate`, `inpaint`, `outpaint`, `expand`):
    /// what a job's missing options become.
    sampling: JsSampling,
}

#[wasm_bindgen]
pub struct WebEngine {
    engine: Rc<Engine>,
    backend: &'static str,
    requested: String,
    reason: String,
    adapter: Option<AdapterInfo>,
}

#[wasm_bindgen]
impl WebEngine {
    /// Load checkpoint bytes after checking their sha256 against `expected_sha256` (hex; empty
    /// skips the check). `backend`: "auto" (WebGPU on a hardware adapter, else the CPU), "webgpu"
    /// or "cpu" (either forced; forced WebGPU also runs on a software adapter).
    pub async fn load(
        bytes: Vec<u8>,
        expected_sha256: String,
        backend: String,
    ) -> Result<WebEngine, JsError> {
        let requested: Backend = backend.parse().map_err(WebError::UnknownName)?;
        if !expected_sha256.is_empty() {
            let got = sha256_hex(&bytes);
            if !got.eq_ignore_ascii_case(expected_sha256.trim()) {
                return Err(WebError::HashMismatch { expected: expected_sha256, got }.into());
            }
        }
        let choice = adapter::choose(requested, None).await?;
        let engine = Engine::from_bytes(&bytes, &choice.device).map_err(WebError::from)?;
        Ok(WebEngine::new(engine, choice, backend))
    }

    /// [`WebEngine::load`] of a `Blob`, read a slice at a time: its checksum in a first pass,
    /// then one tensor at a time, `onProgress(bytesRead)` as it goes (about twice the file's
    /// size in all). The file's sha256 must be `expected_sha256` (hex; empty skips the check).
    pub async fn open(
        file: Blob,
        expected_sha256: String,
        backend: String,
        on_progress: Option<Function>,
    ) -> Result<WebEngine, JsError> {
        let requested: Backend = backend.parse().map_err(WebError::UnknownName)?;
        let mut reader = BlobReader::new(file, on_progress).map_err(WebError::from_js)?;
        let file = CheckpointFile::open(&mut reader).map_err(crate::error::Error::from)?;
        if !expected_sha256.is_empty() && !file.sha256.eq_ignore_ascii_case(expected_sha256.trim()) {
            return Err(WebError::HashMismatch { expected: expected_sha256, got: file.sha256 }.into());
        }
        // The sizes are checked after the checksum pass (which a file must pass before any of
        // its fields is trusted), before any weight is read.
        let choice = adapter::choose(requested, file.info.largest_tensor()).await?;
        if choice.backend == "cpu" {
            fits_wasm_memory(&file.info, &choice.reason)?;
        }
        let engine = Engine::from_file(file, &choice.device).map_err(WebError::from)?;
        reader.finish();
        Ok(WebEngine::new(engine, choice, backend))
    }

    /// "webgpu" or "cpu".
    pub fn backend(&self) -> String {
        self.backend.to_string()
    }

    /// sha256 of the loaded checkpoint.
    pub fn checksum(&self) -> String {
        self.engine.checksum.clone()
    }

    #[wasm_bindgen(js_name = classNames)]
    pub fn class_names(&self) -> Vec<String> {
        self.engine.meta.class_names.clone()
    }

    /// `{backend, requested, reason, adapter, checksum, arch, classNames, nClasses, imageSize,
    /// channels, background, factor, gridH, gridW, codebookSize, multiScale, maxCells, sampling}`.
    pub fn info(&self) -> Result<JsValue, JsError> {
        let c = self.engine.model_config();
        let info = EngineInfo {
            backend: self.backend,
            requested: self.requested.clone(),
            reason: self.reason.clone(),
            adapter: self.adapter.clone(),
            checksum: self.engine.checksum.clone(),
            arch: c.arch.name().to_string(),
            class_names: self.engine.meta.class_names.clone(),
            n_classes: c.n_classes,
            image_size: self.engine.image_size(),
            channels: self.engine.image_channels(),
            background: self.engine.background(),
            factor: self.engine.factor(),
            grid_h: c.grid_h,
            grid_w: c.grid_w,
            codebook_size: self.engine.codebook_size(),
            multi_scale: c.multi_scale,
            max_cells: MAX_CELLS,
            sampling: JsSampling::of(&self.engine),
        };
        Ok(serde_wasm_bindgen::to_value(&info).map_err(WebError::from)?)
    }

    /// One image per class id (an array of at most 64) -> `Promise<[{width, height, channels, pixels}]>`.
    /// Every job takes `on_step` and an optional `AbortSignal` (see the module docs).
    pub fn generate(
        &self,
        classes: JsValue,
        options: JsValue,
        on_step: Function,
        signal: JsValue,
    ) -> Result<Promise, JsError> {
        let classes = classes_from_js(&classes)?;
        let opts = self.options(options, Task::Generate)?;
        let mut hook = step_hook(on_step, signal_from_js(signal)?);
        let engine = Rc::clone(&self.engine);
        Ok(promise(async move {
            let images = engine.generate(&classes, &opts, &mut hook).await?;
            Ok(images_to_js(&images))
        }))
    }

    /// Regenerate every token touched by the white (>= 128) pixels of `mask` as `class`; every
    /// pixel of the other tokens is kept exactly -> `Promise<{width, height, pixels}>`.
    pub fn inpaint(
        &self,
        image: JsValue,
        mask: JsValue,
        class: f64,
        options: JsValue,
        on_step: Function,
        signal: JsValue,
    ) -> Result<Promise, JsError> {
        let image = image_from_js(&image, "image")?;
        let mask = mask_from_js(&mask, &image)?;
        let (class, opts) = (class_from_js(class)?, self.options(options, Task::Inpaint)?);
        let mut hook = step_hook(on_step, signal_from_js(signal)?);
        let engine = Rc::clone(&self.engine);
        Ok(promise(async move {
            let out = engine.inpaint(&image, &mask, class, &opts, &mut hook).await?;
            Ok(image_to_js(&out))
        }))
    }

    /// Extend the canvas by `{left, right, top, bottom}` tokens and fill the new cells.
    pub fn outpaint(
        &self,
        image: JsValue,
        sides: JsValue,
        class: f64,
        options: JsValue,
        on_step: Function,
        signal: JsValue,
    ) -> Result<Promise, JsError> {
        let image = image_from_js(&image, "image")?;
        let sides = sides_from_js(sides)?;
        let (class, opts) = (class_from_js(class)?, self.options(options, Task::Outpaint)?);
        let mut hook = step_hook(on_step, signal_from_js(signal)?);
        let engine = Rc::clone(&self.engine);
        Ok(promise(async move {
            let out = engine.outpaint(&image, sides, class, &opts, &mut hook).await?;
            Ok(image_to_js(&out))
        }))
    }

    /// A `factor`x larger image from `image` (its tokens become the coarse cells), or from
    /// scratch when `image` is null.
    pub fn expand(
        &self,
        image: JsValue,
        factor: u32,
        class: f64,
        options: JsValue,
        on_step: Function,
        signal: JsValue,
    ) -> Result<Promise, JsError> {
        let image = if image.is_null() || image.is_undefined() {
            None
        } else {
            Some(image_from_js(&image, "image")?)
        };
        let (class, opts) = (class_from_js(class)?, self.options(options, Task::Expand)?);
        let mut hook = step_hook(on_step, signal_from_js(signal)?);
        let engine = Rc::clone(&self.engine);
        Ok(promise(async move {
            let out = engine.expand(image.as_ref(), factor as usize, class, &opts, &mut hook).await?;
            Ok(image_to_js(&out))
        }))
    }

    /// Codes of an image whose sides are multiples of the factor -> `{tokens, gridH, gridW}`.
    pub fn encode(&self, image: JsValue) -> Result<Promise, JsError> {
        let image = image_from_js(&image, "image")?;
        let factor = self.engine.factor();
        if !image.width.is_multiple_of(factor) || !image.height.is_multiple_of(factor) {
            return Err(WebError::EncodeSize { width: image.width, height: image.height, factor }.into());
        }
        let engine = Rc::clone(&self.engine);
        Ok(promise(async move {
            let (tokens, h, w) = engine.encode(&image).await?;
            Ok(tokens_to_js(&tokens, h, w))
        }))
    }

    /// The image of an `grid_h x grid_w` grid of codes.
    pub fn decode(&self, tokens: Vec<u32>, grid_h: usize, grid_w: usize) -> Result<Promise, JsError> {
        if tokens.len() != grid_h * grid_w || grid_h * grid_w == 0 {
            return Err(WebError::DecodeGrid { len: tokens.len(), grid_h, grid_w }.into());
        }
        self.check_codes(&tokens)?;
        let engine = Rc::clone(&self.engine);
        Ok(promise(async move {
            let out = engine.decode(&[tokens], grid_h, grid_w).await?;
            Ok(image_to_js(&out.into_iter().next().unwrap_or_else(|| Image::new(1, 1, 1))))
        }))
    }

    /// Preview patches of `codes`: for each, the `factor x factor` pixels at the centre of a 3x3
    /// grid of it -> `Promise<Uint8Array>` of `codes.length * factor * factor * channels` bytes
    /// (in `codes` order, each as an image's pixels). Painting these per decoded token
    /// approximates the image so far; the worker asks for a code's patch when a job first
    /// decodes it.
    pub fn patches(&self, codes: Vec<u32>) -> Result<Promise, JsError> {
        self.check_codes(&codes)?;
        let engine = Rc::clone(&self.engine);
        Ok(promise(async move {
            let f = engine.factor();
            let mut out = Vec::with_capacity(codes.len() * f * f * engine.image_channels());
            for chunk in codes.chunks(64) {
                let grids: Vec<Vec<u32>> = chunk.iter().map(|&c| vec![c; 9]).collect();
                for img in engine.decode(&grids, 3, 3).await? {
                    out.extend_from_slice(&img.crop(f, f, f, f).pixels);
                }
            }
            Ok(Uint8Array::from(out.as_slice()).into())
        }))
    }
}

impl WebEngine {
    fn new(engine: Engine, choice: adapter::Chosen, requested: String) -> Self {
        WebEngine {
            engine: Rc::new(engine),
            backend: choice.backend,
            requested,
            reason: choice.reason,
            adapter: choice.adapter,
        }
    }

    /// A job's options: what JS set, the model's defaults for `task` for the rest.
    fn options(&self, options: JsValue, task: Task) -> Result<SampleOptions, WebError> {
        options_from_js(options, &self.engine.sample_defaults(task))
    }

    /// Every code is in the codebook.
    fn check_codes(&self, codes: &[u32]) -> Result<(), WebError> {
        let codebook = self.engine.codebook_size() as u32;
        match codes.iter().find(|&&c| c >= codebook) {
            Some(&code) => Err(WebError::DecodeCode { code, codebook }),
            None => Ok(()),
        }
    }
}
