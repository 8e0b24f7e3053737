//! PNG downloads: `encodePng`, the library's PNG writer (`Image::try_to_png_with_text`) for the
//! pages.
//!
//! Only the CPU build (`pkg/cpu`) has it. The pages call it on their main thread from their own copy
//! of that build (`www/common.js`, `downloadPng`), whichever backend the model's worker runs, so a
//! download never waits for a job, a model load or a worker restart. `pkg/gpu` is spared the writer
//! (about 40 KB brotli, on the WebGPU path, the one nearest issue 5's transfer budget:
//! docs/performance.md, "Browser: PNG downloads"). Its few errors of its own are [`PngError`]
//! rather than [`WebError`](super::error::WebError) variants, which the GPU build would never make.

use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;

use super::convert::image_from_js;
use crate::image::ImageError;

#[derive(Debug, thiserror::Error)]
pub enum PngError {
    #[error("texts must be an object {{keyword: text}}")]
    NotTexts,
    #[error("texts: the text of '{0}' must be a string")]
    TextNotString(String),
    /// The PNG writer refused the image or a text chunk (a keyword is 1-79 Latin-1 characters).
    #[error(transparent)]
    Write(#[from] ImageError),
}

/// An 8-bit grey or RGB PNG of `image` (`{width, height, channels, pixels}`) with one text chunk per entry of
/// `texts` (`{keyword: text}`, optional): `tEXt` for Latin-1 text, else `iTXt` (the writer puts the
/// `tEXt` ones first, each kind in the object's order) -> `Uint8Array`.
#[wasm_bindgen(js_name = encodePng)]
pub fn encode_png(image: JsValue, texts: JsValue) -> Result<Vec<u8>, JsError> {
    let image = image_from_js(&image, "image")?;
    let texts = texts_from_js(&texts)?;
    let pairs: Vec<(&str, &str)> = texts.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Ok(image.try_to_png_with_text(&pairs).map_err(PngError::from)?)
}

/// `{keyword: text}` (undefined or null: none) -> pairs in the object's own order. The keywords are
/// the PNG writer's to check.
fn texts_from_js(v: &JsValue) -> Result<Vec<(String, String)>, PngError> {
    if v.is_undefined() || v.is_null() {
        return Ok(Vec::new());
    }
    if !v.is_object() || Array::is_array(v) {
        return Err(PngError::NotTexts);
    }
    // Any non-null object, also one without a prototype (not `instanceof Object`).
    Object::entries(v.unchecked_ref())
        .iter()
        .map(|entry| {
            let pair = Array::from(&entry);
            let key = pair.get(0).as_string().unwrap_or_default();
            match pair.get(1).as_string() {
                Some(text) => Ok((key, text)),
                None => Err(PngError::TextNotString(key)),
            }
        })
        .collect()
}
