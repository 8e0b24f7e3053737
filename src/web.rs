//! The browser edge: a thin wasm-bindgen wrapper over `Engine`, meant to live in a Web Worker.
//!
//! * `WebEngine.load(bytes, sha256, backend)` checks the checkpoint's sha256, picks the backend and
//!   loads the weights. `backend` is `"auto"`, `"webgpu"` or `"cpu"`. Auto asks the browser for a
//!   WebGPU adapter itself (`navigator.gpu.requestAdapter()`, through `js_sys::Reflect`, in a
//!   window or a worker) and uses burn-wgpu only on a hardware adapter; with no adapter, or only a
//!   software fallback one (`isFallbackAdapter`, or SwiftShader by name: ~40x slower than the CPU
//!   backend here), it uses the CPU backend (burn-flex). `info()` says which and why, with the
//!   adapter's `GPUAdapterInfo`.
//! * `generate`, `inpaint`, `outpaint`, `expand`, `encode`, `decode` return Promises. Options come
//!   in through serde-wasm-bindgen (every field optional, camelCase); errors leave as `JsError`
//!   with a readable message; GPU data is only read back asynchronously (the engine is async).
//! * The step callback gets `{step, steps, positions, gridH, gridW, tokens}` (`tokens`: the first
//!   image's grid, -1 where not decoded yet). `patches()` gives one small pixel patch per code so
//!   that the page can paint a preview of the grid so far from those tokens.
//! * Two builds: with the `webgpu` feature (`pkg/gpu`) and without (`pkg/cpu`, the CPU backend only,
//!   a fraction of the size); the worker fetches the one it will use.
//! * Cancellation: every job takes an optional `AbortSignal` after its step callback. Between two
//!   decoding steps the job yields to the worker's event loop (one macrotask, through a
//!   `MessageChannel`), so that the worker can handle a `cancel` message and abort the signal;
//!   the job then stops at that step boundary and its Promise rejects with `cancelled`. The
//!   engine, its weights and the GPU device stay loaded. The step callback's return value is
//!   ignored.
//!
//! Images cross the edge as `{width, height, channels, pixels}`: 8 bits per value, row-major, a
//! pixel's channels side by side, `channels` 1 (grey; the default when absent) or 3 (RGB),
//! `pixels` a `Uint8Array` (a plain array is accepted too). Inputs are converted to the model's
//! channels (`info().channels`). A mask is a grey image of the same size (white = regenerate) or
//! a bare `Uint8Array` of `width * height` values.

use std::rc::Rc;

use burn::tensor::Device;
use js_sys::{Function, Promise, Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::checkpoint::sha256_hex;
use crate::choice::Choice;
use crate::decode::{StepEvent, StepWait};
use crate::engine::Engine;
use crate::error::Error;
use crate::image::Image;
use crate::sampling::{CfgSchedule, Order, SampleOptions, Schedule};
use crate::tasks::Sides;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// A `JsValue` thrown by the browser, as text.
fn js_text(v: &JsValue) -> String {
    v.as_string()
        .or_else(|| Reflect::get(v, &"message".into()).ok().and_then(|m| m.as_string()))
        .unwrap_or_else(|| format!("{v:?}"))
}

thread_local! {
    /// burn's wgpu runtime can be initialised once per thread (worker): keep its device.
    #[cfg(feature = "webgpu")]
    static WGPU_DEVICE: std::cell::RefCell<Option<Device>> = const { std::cell::RefCell::new(None) };
}

/// Sampling options as JS passes them; every field is optional.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsOptions {
    /// Counts arrive as f64 and are checked here (`count`), so that the message names the field.
    steps: Option<f64>,
    cfg: Option<f32>,
    cfg_schedule: Option<String>,
    temperature: Option<f32>,
    top_k: Option<f64>,
    top_p: Option<f32>,
    schedule: Option<String>,
    /// "random" (default) or "confidence".
    order: Option<String>,
    /// JS numbers are f64: seeds above 2^53 cannot arrive exactly, so they are refused.
    seed: Option<f64>,
}

impl JsOptions {
    fn into_options(self) -> Result<SampleOptions, JsError> {
        let d = SampleOptions::default();
        let seed = match self.seed {
            None => d.seed,
            Some(s) if s >= 0.0 && s.fract() == 0.0 && s <= 9_007_199_254_740_991.0 => s as u64,
            Some(s) => return Err(JsError::new(&format!("seed must be an integer in 0..=2^53-1, got {s}"))),
        };
        Ok(SampleOptions {
            steps: count("steps", self.steps, d.steps)?,
            cfg: self.cfg.unwrap_or(d.cfg),
            cfg_schedule: match self.cfg_schedule {
                Some(s) => s.parse::<CfgSchedule>().map_err(js_err)?,
                None => d.cfg_schedule,
            },
            temperature: self.temperature.unwrap_or(d.temperature),
            top_k: count("topK", self.top_k, d.top_k)?,
            top_p: self.top_p.unwrap_or(d.top_p),
            schedule: match self.schedule {
                Some(s) => s.parse::<Schedule>().map_err(js_err)?,
                None => d.schedule,
            },
            order: match self.order {
                Some(s) => s.parse::<Order>().map_err(js_err)?,
                None => d.order,
            },
            seed,
        })
    }
}

/// A whole number from JS (the engine then checks its range, e.g. steps against T).
fn count(name: &str, v: Option<f64>, default: usize) -> Result<usize, JsError> {
    match v {
        None => Ok(default),
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(n as usize),
        Some(n) => Err(JsError::new(&format!("{name} must be an integer in 0..=2^32-1, got {n}"))),
    }
}

fn parse_options(options: JsValue) -> Result<SampleOptions, JsError> {
    let js: JsOptions = if options.is_undefined() || options.is_null() {
        JsOptions::default()
    } else {
        // serde's message, without the "Error: " of the JS Error it arrives in.
        serde_wasm_bindgen::from_value(options)
            .map_err(|e| JsError::new(&format!("options: {}", js_text(&JsValue::from(e)))))?
    };
    js.into_options()
}

/// Out-painting sides as JS passes them, in tokens; missing sides are 0.
#[derive(Deserialize, Default)]
#[serde(default)]
struct JsSides {
    left: usize,
    right: usize,
    top: usize,
    bottom: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsStep<'a> {
    step: usize,
    steps: usize,
    positions: &'a [usize],
    grid_h: usize,
    grid_w: usize,
    tokens: Vec<i32>,
}

#[derive(Serialize)]
struct JsImage {
    width: usize,
    height: usize,
    channels: usize,
    #[serde(with = "serde_bytes_as_vec")]
    pixels: Vec<u8>,
}

mod serde_bytes_as_vec {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
}

impl From<Image> for JsImage {
    fn from(i: Image) -> Self {
        JsImage { width: i.width, height: i.height, channels: i.channels, pixels: i.pixels }
    }
}

fn image_to_js(image: Image) -> Result<JsValue, JsError> {
    serde_wasm_bindgen::to_value(&JsImage::from(image)).map_err(js_err)
}

fn images_to_js(images: Vec<Image>) -> Result<JsValue, JsError> {
    let list: Vec<JsImage> = images.into_iter().map(JsImage::from).collect();
    serde_wasm_bindgen::to_value(&list).map_err(js_err)
}

/// Bytes of a `Uint8Array`, `Uint8ClampedArray` or plain array of numbers.
fn bytes_from_js(v: &JsValue, what: &str) -> Result<Vec<u8>, JsError> {
    if v.is_undefined() || v.is_null() {
        return Err(JsError::new(&format!("{what}: no pixels")));
    }
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if v.is_object() {
        return Ok(Uint8Array::new(v).to_vec());
    }
    Err(JsError::new(&format!("{what}: pixels must be a Uint8Array")))
}

fn dim(v: &JsValue, key: &str, what: &str) -> Result<usize, JsError> {
    let n = Reflect::get(v, &key.into()).ok().and_then(|x| x.as_f64());
    match n {
        Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= 4096.0 => Ok(n as usize),
        _ => Err(JsError::new(&format!("{what}: '{key}' must be an integer in 1..=4096"))),
    }
}

/// `{width, height, channels, pixels}` -> `Image`; `channels` is 1 (grey, the default) or 3.
fn image_from_js(v: &JsValue, what: &str) -> Result<Image, JsError> {
    if !v.is_object() {
        return Err(JsError::new(&format!("{what} must be an object {{width, height, pixels}}")));
    }
    let (width, height) = (dim(v, "width", what)?, dim(v, "height", what)?);
    let channels = match Reflect::get(v, &"channels".into()).ok().filter(|c| !c.is_undefined()) {
        None => 1,
        Some(c) => c
            .as_f64()
            .filter(|&c| c == 1.0 || c == 3.0)
            .map(|c| c as usize)
            .ok_or_else(|| JsError::new(&format!("{what}: 'channels' must be 1 (grey) or 3 (RGB)")))?,
    };
    let pixels = bytes_from_js(&Reflect::get(v, &"pixels".into()).unwrap_or(JsValue::UNDEFINED), what)?;
    Image::from_raw(width, height, channels, pixels).map_err(|e| JsError::new(&format!("{what}: {e}")))
}

/// A mask: an image of the same size, or bare bytes of `width * height` values.
fn mask_from_js(v: &JsValue, like: &Image) -> Result<Image, JsError> {
    if v.dyn_ref::<Uint8Array>().is_some() || js_sys::Array::is_array(v) {
        let pixels = bytes_from_js(v, "mask")?;
        return Image::from_raw(like.width, like.height, 1, pixels)
            .map_err(|e| JsError::new(&format!("mask: {e}")));
    }
    image_from_js(v, "mask")
}

/// Images one `generate` call may ask for (the page asks for 1-16).
const MAX_BATCH: usize = 64;

/// An array (or typed array) of class ids, each checked like `class_from_js`.
fn classes_from_js(v: &JsValue) -> Result<Vec<usize>, JsError> {
    if !v.is_object() {
        return Err(JsError::new("classes must be an array of class ids"));
    }
    let list = js_sys::Array::from(v);
    if list.length() as usize > MAX_BATCH {
        return Err(JsError::new(&format!("at most {MAX_BATCH} images per call, got {}", list.length())));
    }
    list.iter().map(|c| class_from_js(c.as_f64().unwrap_or(f64::NAN))).collect()
}

fn class_from_js(class: f64) -> Result<usize, JsError> {
    if class >= 0.0 && class.fract() == 0.0 && class < 65_536.0 {
        Ok(class as usize)
    } else {
        Err(JsError::new(&format!("class must be a non-negative integer, got {class}")))
    }
}

#[wasm_bindgen]
extern "C" {
    /// The browser's `MessageChannel`: posting to one port queues a task on the other.
    type MessageChannel;
    #[wasm_bindgen(constructor, catch)]
    fn new() -> Result<MessageChannel, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn port1(this: &MessageChannel) -> MessagePort;
    #[wasm_bindgen(method, getter)]
    fn port2(this: &MessageChannel) -> MessagePort;

    type MessagePort;
    #[wasm_bindgen(method, setter)]
    fn set_onmessage(this: &MessagePort, handler: &Function);
    #[wasm_bindgen(method, js_name = postMessage)]
    fn post_message(this: &MessagePort, message: &JsValue);
    #[wasm_bindgen(method)]
    fn close(this: &MessagePort);

    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: i32);
}

/// Hands the event loop one turn: each `next_task()` resolves in a new task (a macrotask), after
/// the messages already queued for the worker. A `MessageChannel` is used because nested
/// `setTimeout(0)` calls are clamped to 4 ms; `setTimeout` is the fallback.
struct Yielder(Option<MessageChannel>);

impl Yielder {
    fn new() -> Self {
        Self(MessageChannel::new().ok())
    }

    fn next_task(&self) -> Promise {
        Promise::new(&mut |resolve, _| match &self.0 {
            Some(channel) => {
                channel.port1().set_onmessage(&resolve);
                channel.port2().post_message(&JsValue::UNDEFINED);
            }
            None => set_timeout(&resolve, 0),
        })
    }
}

impl Drop for Yielder {
    fn drop(&mut self) {
        if let Some(channel) = &self.0 {
            channel.port1().close();
        }
    }
}

/// `signal.aborted` of an `AbortSignal` (false for `undefined` or anything else).
fn aborted(signal: &JsValue) -> bool {
    signal.is_object() && Reflect::get(signal, &"aborted".into()).ok().and_then(|v| v.as_bool()) == Some(true)
}

/// The hook of one job: after every decoding step, report the step to the JS callback (a throw is
/// logged), then yield to the event loop and stop with `cancelled` if `signal` was aborted
/// meanwhile (the engine then returns `Error::Cancelled` at that step boundary).
fn step_hook(on_step: Function, signal: JsValue) -> impl FnMut(&StepEvent) -> StepWait {
    let yielder = Yielder::new();
    move |e: &StepEvent| {
        let step = JsStep {
            step: e.step,
            steps: e.steps,
            positions: &e.positions,
            grid_h: e.grid_h,
            grid_w: e.grid_w,
            tokens: e.tokens.iter().map(|t| t.map_or(-1, |c| c as i32)).collect(),
        };
        if let Ok(v) = serde_wasm_bindgen::to_value(&step)
            && let Err(err) = on_step.call1(&JsValue::NULL, &v)
        {
            web_sys::console::warn_1(&format!("arpg: the step callback threw: {}", js_text(&err)).into());
        }
        let (next, signal) = (JsFuture::from(yielder.next_task()), signal.clone());
        Box::pin(async move {
            let _ = next.await;
            if aborted(&signal) { Err(Error::Cancelled) } else { Ok(()) }
        })
    }
}

/// What the browser says about its WebGPU adapter (`GPUAdapterInfo` plus `isFallbackAdapter`), and
/// whether this runtime counts it as software (`software`: the one definition; the worker asks
/// `detectAdapter()` before it fetches the WebGPU build).
#[derive(Serialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
struct AdapterInfo {
    vendor: String,
    architecture: String,
    device: String,
    description: String,
    is_fallback_adapter: bool,
    software: bool,
}

impl AdapterInfo {
    /// A software adapter: flagged by the browser, or SwiftShader (older Chromium does not flag it).
    fn is_software(&self) -> bool {
        let text = format!("{} {} {} {}", self.vendor, self.architecture, self.device, self.description);
        self.is_fallback_adapter || text.to_ascii_lowercase().contains("swiftshader")
    }

    fn label(&self) -> String {
        let parts: Vec<&str> = [&self.vendor, &self.architecture, &self.device, &self.description]
            .into_iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() { "unnamed adapter".into() } else { parts.join(" ") }
    }
}

fn get_str(v: &JsValue, key: &str) -> String {
    Reflect::get(v, &key.into()).ok().and_then(|x| x.as_string()).unwrap_or_default()
}

/// Ask the browser for a WebGPU adapter: `Ok(None)` when there is no `navigator.gpu` or no adapter.
async fn request_adapter() -> Result<Option<AdapterInfo>, String> {
    let global = js_sys::global();
    let navigator = Reflect::get(&global, &"navigator".into()).map_err(|e| js_text(&e))?;
    if !navigator.is_object() {
        return Ok(None);
    }
    let gpu = Reflect::get(&navigator, &"gpu".into()).map_err(|e| js_text(&e))?;
    if !gpu.is_object() {
        return Ok(None);
    }
    let request: Function = Reflect::get(&gpu, &"requestAdapter".into())
        .map_err(|e| js_text(&e))?
        .dyn_into()
        .map_err(|_| "navigator.gpu.requestAdapter is not a function".to_string())?;
    let promise: Promise = request
        .call0(&gpu)
        .map_err(|e| js_text(&e))?
        .dyn_into()
        .map_err(|_| "requestAdapter() did not return a Promise".to_string())?;
    let adapter = JsFuture::from(promise).await.map_err(|e| js_text(&e))?;
    if !adapter.is_object() {
        return Ok(None);
    }
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let flag = |v: &JsValue| Reflect::get(v, &"isFallbackAdapter".into()).ok().and_then(|x| x.as_bool());
    let is_fallback_adapter =
        (if info.is_object() { flag(&info) } else { None }).or_else(|| flag(&adapter)).unwrap_or(false);
    let mut adapter = AdapterInfo {
        vendor: get_str(&info, "vendor"),
        architecture: get_str(&info, "architecture"),
        device: get_str(&info, "device"),
        description: get_str(&info, "description"),
        is_fallback_adapter,
        software: false,
    };
    adapter.software = adapter.is_software();
    Ok(Some(adapter))
}

/// The adapter the browser offers, as `{vendor, architecture, device, description,
/// isFallbackAdapter, software}`, or `null` when it has none (or no WebGPU at all).
#[wasm_bindgen(js_name = detectAdapter)]
pub async fn detect_adapter() -> Result<JsValue, JsError> {
    match request_adapter().await {
        Ok(Some(info)) => serde_wasm_bindgen::to_value(&info).map_err(js_err),
        Ok(None) => Ok(JsValue::NULL),
        Err(e) => Err(JsError::new(&format!("requestAdapter failed: {e}"))),
    }
}

/// burn's wgpu device for this worker, initialised on first use.
#[cfg(feature = "webgpu")]
async fn wgpu_device() -> Result<Device, String> {
    if let Some(d) = WGPU_DEVICE.with(|d| d.borrow().clone()) {
        return Ok(d);
    }
    // Device loss is watched by the worker (www/worker.js), on the GPUDevice itself.
    let device = Device::wgpu_options().init_async().await.map_err(|e| format!("{e:?}"))?;
    WGPU_DEVICE.with(|d| *d.borrow_mut() = Some(device.clone()));
    Ok(device)
}

/// The CPU-only build (`pkg/cpu`) has no WebGPU runtime.
#[cfg(not(feature = "webgpu"))]
async fn wgpu_device() -> Result<Device, String> {
    Err("this is the CPU-only build of the runtime (pkg/cpu)".into())
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
    /// Pixels per token side.
    factor: usize,
    grid_h: usize,
    grid_w: usize,
    codebook_size: usize,
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
        if !expected_sha256.is_empty() {
            let got = sha256_hex(&bytes);
            if !got.eq_ignore_ascii_case(expected_sha256.trim()) {
                return Err(JsError::new(&format!(
                    "checkpoint hash mismatch: expected {expected_sha256}, got {got}"
                )));
            }
        }
        let (device, name, reason, adapter) = match backend.as_str() {
            "cpu" => (Device::flex(), "cpu", "CPU forced".to_string(), None),
            "webgpu" => {
                let adapter = request_adapter().await.ok().flatten();
                let device = wgpu_device()
                    .await
                    .map_err(|e| JsError::new(&format!("WebGPU initialisation failed: {e}")))?;
                let reason = match &adapter {
                    Some(a) if a.is_software() => format!("WebGPU forced (software adapter: {})", a.label()),
                    Some(a) => format!("WebGPU forced ({})", a.label()),
                    None => "WebGPU forced".to_string(),
                };
                (device, "webgpu", reason, adapter)
            }
            "auto" => match request_adapter().await {
                Err(e) => (Device::flex(), "cpu", format!("no WebGPU ({e}): using the CPU"), None),
                Ok(None) => (Device::flex(), "cpu", "no WebGPU adapter: using the CPU".to_string(), None),
                Ok(Some(a)) if a.is_software() => {
                    let reason = format!(
                        "only a software WebGPU adapter ({}), slower than the CPU backend: using the CPU",
                        a.label()
                    );
                    (Device::flex(), "cpu", reason, Some(a))
                }
                Ok(Some(a)) => match wgpu_device().await {
                    Ok(device) => (device, "webgpu", format!("WebGPU on {}", a.label()), Some(a)),
                    Err(e) => {
                        let reason = format!("WebGPU initialisation failed ({e}): using the CPU");
                        (Device::flex(), "cpu", reason, Some(a))
                    }
                },
            },
            other => return Err(JsError::new(&format!("unknown backend '{other}' (auto, webgpu, cpu)"))),
        };
        let engine = Engine::from_bytes(&bytes, &device).map_err(js_err)?;
        Ok(WebEngine { engine: Rc::new(engine), backend: name, requested: backend, reason, adapter })
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
    /// factor, gridH, gridW, codebookSize}`.
    pub fn info(&self) -> Result<JsValue, JsError> {
        let c = self.engine.model_config();
        let t = &self.engine.tokenizer.config;
        let info = EngineInfo {
            backend: self.backend,
            requested: self.requested.clone(),
            reason: self.reason.clone(),
            adapter: self.adapter.clone(),
            checksum: self.engine.checksum.clone(),
            arch: c.arch.name().to_string(),
            class_names: self.engine.meta.class_names.clone(),
            n_classes: c.n_classes,
            image_size: t.image_size,
            channels: t.image_channels,
            factor: t.factor(),
            grid_h: c.grid_h,
            grid_w: c.grid_w,
            codebook_size: t.codebook_size,
        };
        serde_wasm_bindgen::to_value(&info).map_err(js_err)
    }

    /// One image per class id (an array of at most 64) -> `Promise<[{width, height, pixels}]>`.
    /// Every job takes `on_step` and an optional `AbortSignal` (see the module docs).
    pub fn generate(
        &self,
        classes: JsValue,
        options: JsValue,
        on_step: Function,
        signal: JsValue,
    ) -> Result<Promise, JsError> {
        let (classes, opts) = (classes_from_js(&classes)?, parse_options(options)?);
        let engine = Rc::clone(&self.engine);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let mut cb = step_hook(on_step, signal);
            let images = engine.generate(&classes, &opts, &mut cb).await.map_err(js_err)?;
            Ok(images_to_js(images)?)
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
        let (class, opts) = (class_from_js(class)?, parse_options(options)?);
        let engine = Rc::clone(&self.engine);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let mut cb = step_hook(on_step, signal);
            let out = engine.inpaint(&image, &mask, class, &opts, &mut cb).await.map_err(js_err)?;
            Ok(image_to_js(out)?)
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
        let s: JsSides = serde_wasm_bindgen::from_value(sides)
            .map_err(|e| JsError::new(&format!("sides: {}", js_text(&JsValue::from(e)))))?;
        let sides = Sides { left: s.left, right: s.right, top: s.top, bottom: s.bottom };
        let (class, opts) = (class_from_js(class)?, parse_options(options)?);
        let engine = Rc::clone(&self.engine);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let mut cb = step_hook(on_step, signal);
            let out = engine.outpaint(&image, sides, class, &opts, &mut cb).await.map_err(js_err)?;
            Ok(image_to_js(out)?)
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
        let (class, opts) = (class_from_js(class)?, parse_options(options)?);
        let engine = Rc::clone(&self.engine);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let mut cb = step_hook(on_step, signal);
            let out = engine
                .expand(image.as_ref(), factor as usize, class, &opts, &mut cb)
                .await
                .map_err(js_err)?;
            Ok(image_to_js(out)?)
        }))
    }

    /// Codes of an image whose sides are multiples of the factor -> `{tokens, gridH, gridW}`.
    pub fn encode(&self, image: JsValue) -> Result<Promise, JsError> {
        let image = image_from_js(&image, "image")?;
        let f = self.engine.tokenizer.config.factor();
        if !image.width.is_multiple_of(f) || !image.height.is_multiple_of(f) {
            return Err(JsError::new(&format!(
                "encode: a {}x{} image is not a multiple of the {f}-pixel token size",
                image.width, image.height
            )));
        }
        let engine = Rc::clone(&self.engine);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let (tokens, h, w) = engine.encode(&image).await.map_err(js_err)?;
            let out = js_sys::Object::new();
            let set = |k: &str, v: JsValue| Reflect::set(&out, &k.into(), &v);
            set("tokens", js_sys::Uint32Array::from(tokens.as_slice()).into())?;
            set("gridH", (h as f64).into())?;
            set("gridW", (w as f64).into())?;
            Ok(out.into())
        }))
    }

    /// The image of an `grid_h x grid_w` grid of codes.
    pub fn decode(&self, tokens: Vec<u32>, grid_h: usize, grid_w: usize) -> Result<Promise, JsError> {
        let v = self.engine.tokenizer.config.codebook_size as u32;
        if tokens.len() != grid_h * grid_w || grid_h * grid_w == 0 {
            return Err(JsError::new(&format!(
                "decode: {} tokens for a {grid_h}x{grid_w} grid",
                tokens.len()
            )));
        }
        if let Some(t) = tokens.iter().find(|&&t| t >= v) {
            return Err(JsError::new(&format!("decode: code {t} is outside the codebook (0..{v})")));
        }
        let engine = Rc::clone(&self.engine);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let out = engine.decode(&[tokens], grid_h, grid_w).await.map_err(js_err)?;
            Ok(image_to_js(out.into_iter().next().unwrap_or_else(|| Image::new(1, 1, 1)))?)
        }))
    }

    /// Preview patches: for each code `c`, the `factor x factor` pixels at the centre of a 3x3
    /// grid of `c` -> `Promise<Uint8Array>` of `codebookSize * factor * factor * channels` bytes
    /// (code-major, then as an image's pixels).
    /// Painting these per decoded token approximates the image so far.
    pub fn patches(&self) -> Promise {
        let engine = Rc::clone(&self.engine);
        wasm_bindgen_futures::future_to_promise(async move {
            let (v, f) = (engine.tokenizer.config.codebook_size, engine.tokenizer.config.factor());
            let mut out = Vec::with_capacity(v * f * f * engine.image_channels());
            let codes: Vec<u32> = (0..v as u32).collect();
            for chunk in codes.chunks(64) {
                let grids: Vec<Vec<u32>> = chunk.iter().map(|&c| vec![c; 9]).collect();
                for img in engine.decode(&grids, 3, 3).await.map_err(js_err)? {
                    out.extend_from_slice(&img.crop(f, f, f, f).pixels);
                }
            }
            Ok(Uint8Array::from(out.as_slice()).into())
        })
    }
}
