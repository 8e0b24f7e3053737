//! JS values in and out of the web edge: sampling options, images and masks, class ids, out-painting
//! sides, the abort signal, and what the jobs return.
//!
//! Conventions:
//!
//! * Every check of what JS hands in is here, and fails with a [`WebError`] that names the
//!   argument or field (the pages show these messages; `tests/e2e/faults.test.mjs` pins them).
//! * Numbers arrive as f64 and are checked before they become `usize`/`u64`: a fraction, a negative
//!   number or one too large for the field is refused, never rounded or wrapped.
//! * Images cross the edge as `{width, height, channels, pixels}`: 8 bits per value, row-major, a
//!   pixel's channels side by side, `channels` 1 (grey; the default when absent) or 3 (RGB),
//!   `pixels` a `Uint8Array` (a `Uint8ClampedArray` or plain array is accepted too). The engine
//!   converts inputs to the model's channels (`info().channels`). [`image_from_js`] and
//!   [`image_to_js`] are the one pair that knows this layout.
//! * A mask is a grey image of the same size (white = regenerate) or bare bytes of
//!   `width * height`.
//! * Plain objects the caller builds (`{width, height, pixels}`) have no web-sys type: their fields
//!   are read with `js_sys::Reflect`. Option objects go through serde-wasm-bindgen (every field
//!   optional, camelCase), which copies a `Uint8Array` element by element, hence not for pixels.

use js_sys::{Array, Object, Reflect, Uint8Array, Uint32Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

use super::error::WebError;
use crate::choice::Choice;
use crate::decode::StepEvent;
use crate::engine::Engine;
use crate::image::Image;
use crate::sampling::{SampleOptions, Task};
use crate::tasks::Sides;

/// Images one `generate` call may ask for (the page asks for 1-16).
pub const MAX_BATCH: usize = 64;

/// Largest side, in pixels, of an image that crosses the edge (the library's `MAX_PIXELS` is 4096²).
const MAX_SIDE: f64 = 4096.0;

/// A value the browser threw, as text: an `Error`'s message, else how JS prints it.
pub fn js_text(v: &JsValue) -> String {
    match (v.dyn_ref::<js_sys::Error>(), v.as_string()) {
        (Some(e), _) => e.message().into(),
        (None, Some(s)) => s,
        (None, None) => format!("{v:?}"),
    }
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
    seed: Option<f64>,
}

/// `options` (undefined, null or an object) -> `SampleOptions`, missing fields as in `d` (the
/// model's defaults for the task). Ranges that depend on the model (steps against the grid, the
/// class) are the engine's to check.
pub fn options_from_js(options: JsValue, d: &SampleOptions) -> Result<SampleOptions, WebError> {
    let js: JsOptions = if options.is_undefined() || options.is_null() {
        JsOptions::default()
    } else {
        serde_wasm_bindgen::from_value(options).map_err(|e| shape("options", e))?
    };
    let seed = match js.seed {
        None => d.seed,
        Some(s) if s >= 0.0 && s.fract() == 0.0 && s <= 9_007_199_254_740_991.0 => s as u64,
        Some(s) => return Err(WebError::Seed(s)),
    };
    Ok(SampleOptions {
        steps: count("steps", js.steps, d.steps)?,
        cfg: js.cfg.unwrap_or(d.cfg),
        cfg_schedule: parse_or(js.cfg_schedule, d.cfg_schedule)?,
        temperature: js.temperature.unwrap_or(d.temperature),
        top_k: count("topK", js.top_k, d.top_k)?,
        top_p: js.top_p.unwrap_or(d.top_p),
        schedule: parse_or(js.schedule, d.schedule)?,
        order: parse_or(js.order, d.order)?,
        step_rule: d.step_rule,
        seed,
    })
}

/// A model's sampling defaults for each task, as `info().sampling` gives them to the pages (a
/// struct, not a map: serde-wasm-bindgen makes a map a JS `Map`, not an object).
#[derive(Serialize)]
pub struct JsSampling {
    generate: JsDefaults,
    inpaint: JsDefaults,
    outpaint: JsDefaults,
    expand: JsDefaults,
}

impl JsSampling {
    pub fn of(engine: &Engine) -> Self {
        let of = |task| JsDefaults::from(&engine.sample_defaults(task));
        Self {
            generate: of(Task::Generate),
            inpaint: of(Task::Inpaint),
            outpaint: of(Task::Outpaint),
            expand: of(Task::Expand),
        }
    }
}

/// A task's sampling defaults under the option names JS passes, so that a page can show them and
/// send them back.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsDefaults {
    steps: usize,
    cfg: f64,
    cfg_schedule: &'static str,
    temperature: f64,
    schedule: &'static str,
}

impl From<&SampleOptions> for JsDefaults {
    fn from(o: &SampleOptions) -> Self {
        Self {
            steps: o.steps,
            cfg: js_number(o.cfg),
            cfg_schedule: o.cfg_schedule.name(),
            temperature: js_number(o.temperature),
            schedule: o.schedule.name(),
        }
    }
}

/// The decimal an f32 stands for, as a JS number: 0.9, not 0.8999999761581421 (the f32's exact
/// value), so that a page shows what the checkpoint's JSON says and sends back the same f32.
fn js_number(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// serde's message, without the "Error: " of the JS `Error` it arrives in.
fn shape(what: &'static str, e: serde_wasm_bindgen::Error) -> WebError {
    WebError::Shape { what, message: js_text(&JsValue::from(e)) }
}

/// A named choice (`Schedule`, `Order`, `CfgSchedule`), or `default` when absent.
fn parse_or<T: std::str::FromStr<Err = String>>(v: Option<String>, default: T) -> Result<T, WebError> {
    v.map_or(Ok(default), |s| s.parse().map_err(WebError::UnknownName))
}

/// A whole number from JS (the engine then checks its range, e.g. steps against T).
fn count(name: &'static str, v: Option<f64>, default: usize) -> Result<usize, WebError> {
    match v {
        None => Ok(default),
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(n as usize),
        Some(value) => Err(WebError::Count { name, value }),
    }
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

/// `{left, right, top, bottom}` in tokens, each optional.
pub fn sides_from_js(sides: JsValue) -> Result<Sides, WebError> {
    let s: JsSides = serde_wasm_bindgen::from_value(sides).map_err(|e| shape("sides", e))?;
    Ok(Sides { left: s.left, right: s.right, top: s.top, bottom: s.bottom })
}

/// An array (or typed array) of at most [`MAX_BATCH`] class ids, each checked like [`class_from_js`].
pub fn classes_from_js(v: &JsValue) -> Result<Vec<usize>, WebError> {
    if !v.is_object() {
        return Err(WebError::NotClasses);
    }
    let list = Array::from(v);
    if list.length() as usize > MAX_BATCH {
        return Err(WebError::Batch { max: MAX_BATCH, got: list.length() });
    }
    list.iter().map(|c| class_from_js(c.as_f64().unwrap_or(f64::NAN))).collect()
}

/// A class id: a whole number below 65536 (the engine checks it against the model's classes).
pub fn class_from_js(class: f64) -> Result<usize, WebError> {
    if class >= 0.0 && class.fract() == 0.0 && class < 65_536.0 {
        Ok(class as usize)
    } else {
        Err(WebError::Class(class))
    }
}

/// A job's optional `AbortSignal`: `undefined` or `null` is none.
pub fn signal_from_js(v: JsValue) -> Result<Option<AbortSignal>, WebError> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.dyn_into().map(Some).map_err(|_| WebError::NotASignal)
}

// ---------------------------------------------------------------- images

/// `{width, height, channels, pixels}` -> `Image`; `what` names the argument in errors.
pub fn image_from_js(v: &JsValue, what: &'static str) -> Result<Image, WebError> {
    if !v.is_object() {
        return Err(WebError::NotAnImage { what });
    }
    let (width, height) = (side(v, "width", what)?, side(v, "height", what)?);
    let channels = match field(v, "channels") {
        c if c.is_undefined() => 1,
        c => c.as_f64().filter(|&c| c == 1.0 || c == 3.0).ok_or(WebError::Channels { what })? as usize,
    };
    let pixels = bytes_from_js(&field(v, "pixels"), what)?;
    Image::from_raw(width, height, channels, pixels).map_err(|source| WebError::Image { what, source })
}

/// `Image` -> `{width, height, channels, pixels: Uint8Array}`.
pub fn image_to_js(image: &Image) -> JsValue {
    let out = Object::new();
    set(&out, "width", image.width as f64);
    set(&out, "height", image.height as f64);
    set(&out, "channels", image.channels as f64);
    set(&out, "pixels", Uint8Array::from(image.pixels.as_slice()));
    out.into()
}

/// Images -> an array of [`image_to_js`] objects.
pub fn images_to_js(images: &[Image]) -> JsValue {
    images.iter().map(image_to_js).collect::<Array>().into()
}

/// A mask for `like`: an image of the same size, or bare bytes of `width * height` values.
pub fn mask_from_js(v: &JsValue, like: &Image) -> Result<Image, WebError> {
    if v.dyn_ref::<Uint8Array>().is_some() || Array::is_array(v) {
        let pixels = bytes_from_js(v, "mask")?;
        return Image::from_raw(like.width, like.height, 1, pixels)
            .map_err(|source| WebError::Image { what: "mask", source });
    }
    image_from_js(v, "mask")
}

/// `v[key]` of a plain object (undefined when it is missing or the read throws).
fn field(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// `target[key] = value` on an object made here (cannot throw: no setters, not frozen).
fn set(target: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(target, &key.into(), &value.into());
}

/// An image side: a whole number in 1..=4096.
fn side(v: &JsValue, key: &'static str, what: &'static str) -> Result<usize, WebError> {
    match field(v, key).as_f64() {
        Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= MAX_SIDE => Ok(n as usize),
        _ => Err(WebError::Side { what, key }),
    }
}

/// Bytes of a `Uint8Array`, `Uint8ClampedArray` or plain array of numbers.
fn bytes_from_js(v: &JsValue, what: &'static str) -> Result<Vec<u8>, WebError> {
    if v.is_undefined() || v.is_null() {
        return Err(WebError::NoPixels { what });
    }
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if v.is_object() {
        return Ok(Uint8Array::new(v).to_vec());
    }
    Err(WebError::NotBytes { what })
}

// ---------------------------------------------------------------- what jobs return

/// The step callback's argument: `{step, steps, positions, gridH, gridW, tokens}`, `tokens` the
/// first image's grid with -1 where not decoded yet.
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

pub fn step_to_js(e: &StepEvent) -> Result<JsValue, WebError> {
    let step = JsStep {
        step: e.step,
        steps: e.steps,
        positions: &e.positions,
        grid_h: e.grid_h,
        grid_w: e.grid_w,
        tokens: e.tokens.iter().map(|t| t.map_or(-1, |c| c as i32)).collect(),
    };
    Ok(serde_wasm_bindgen::to_value(&step)?)
}

/// `encode`'s result: `{tokens: Uint32Array, gridH, gridW}`.
pub fn tokens_to_js(tokens: &[u32], grid_h: usize, grid_w: usize) -> JsValue {
    let out = Object::new();
    set(&out, "tokens", Uint32Array::from(tokens));
    set(&out, "gridH", grid_h as f64);
    set(&out, "gridW", grid_w as f64);
    out.into()
}
