//! The web edge's error type: what JS handed in that cannot be used, what the browser refused,
//! and the library's own [`Error`]. It leaves as a `JsError` whose message is the `Display` text
//! below (wasm-bindgen's `From<E: std::error::Error> for JsError`), so `?` is the whole conversion.
//! The pages and the browser tests read these messages: change them together. (`encodePng`, only
//! in the CPU build, adds its few own in `png::PngError`.)

use crate::error::Error;
use crate::image::ImageError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A count (steps, top-k) that is not a whole number of a sane size.
    #[error("{name} must be an integer in 0..=2^32-1, got {value}")]
    Count { name: &'static str, value: f64 },
    /// JS numbers are f64: seeds above 2^53 cannot arrive exactly.
    #[error("seed must be an integer in 0..=2^53-1, got {0}")]
    Seed(f64),
    /// An option's name that the library does not know (schedule, order, cfg schedule).
    #[error("{0}")]
    UnknownName(String),
    /// serde could not read a JS object (`options`, `sides`) into its Rust form.
    #[error("{what}: {message}")]
    Shape { what: &'static str, message: String },
    #[error("{what} must be an object {{width, height, pixels}}")]
    NotAnImage { what: &'static str },
    #[error("{what}: 'channels' must be 1 (grey) or 3 (RGB)")]
    Channels { what: &'static str },
    #[error("{what}: '{key}' must be an integer in 1..=4096")]
    Side { what: &'static str, key: &'static str },
    #[error("{what}: no pixels")]
    NoPixels { what: &'static str },
    #[error("{what}: pixels must be a Uint8Array")]
    NotBytes { what: &'static str },
    /// Pixels that do not make an image of the given size.
    #[error("{what}: {source}")]
    Image { what: &'static str, source: ImageError },
    #[error("classes must be an array of class ids")]
    NotClasses,
    #[error("at most {max} images per call, got {got}")]
    Batch { max: usize, got: u32 },
    #[error("class must be a non-negative integer, got {0}")]
    Class(f64),
    #[error("signal must be an AbortSignal (or undefined)")]
    NotASignal,
    #[error("encode: a {width}x{height} image is not a multiple of the {factor}-pixel token size")]
    EncodeSize { width: usize, height: usize, factor: usize },
    #[error("decode: {len} tokens for a {grid_h}x{grid_w} grid")]
    DecodeGrid { len: usize, grid_h: usize, grid_w: usize },
    #[error("decode: code {code} is outside the codebook (0..{codebook})")]
    DecodeCode { code: u32, codebook: u32 },
    #[error("checkpoint hash mismatch: expected {expected}, got {got}")]
    HashMismatch { expected: String, got: String },
    /// Forced WebGPU whose device could not be made.
    #[error("WebGPU initialisation failed: {0}")]
    WebGpuInit(String),
    /// Forced WebGPU on an adapter whose buffers cannot hold the model.
    #[error("WebGPU cannot run this model: {0}; pick the CPU backend")]
    AdapterLimit(String),
    /// A model whose f32 weights do not fit the CPU backend's wasm memory.
    #[error(
        "this model's {:.0}M weights take {:.1} GB as f32, more than the {:.1} GB the CPU backend in a browser can hold (wasm32 addresses 4 GiB); the CPU runs it here because: {why_cpu}. It runs on a WebGPU adapter that holds it, or natively with the arpg CLI",
        *params as f64 / 1e6, *params as f64 * 4.0 / 1e9, *max as f64 / 1e9
    )]
    TooLarge { params: u64, max: u64, why_cpu: String },
    /// `navigator.gpu.requestAdapter()` threw or rejected (`detectAdapter`).
    #[error("requestAdapter failed: {0}")]
    Adapter(String),
    /// A browser call that threw (reading a file, for one).
    #[error("{0}")]
    Browser(String),
    /// A Rust value serde-wasm-bindgen could not turn into JS.
    #[error("cannot pass the result to JS: {0}")]
    ToJs(String),
    #[error(transparent)]
    Engine(#[from] Error),
}

impl From<serde_wasm_bindgen::Error> for WebError {
    fn from(e: serde_wasm_bindgen::Error) -> Self {
        WebError::ToJs(e.to_string())
    }
}

impl WebError {
    /// What a browser call threw, as text.
    pub fn from_js(e: wasm_bindgen::JsValue) -> Self {
        WebError::Browser(super::convert::js_text(&e))
    }
}
