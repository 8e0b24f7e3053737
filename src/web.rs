//! The browser edge: a thin wasm-bindgen wrapper over `Engine`. Options come in through
//! serde-wasm-bindgen, errors leave as `JsError` with a readable message, GPU data is only read
//! back asynchronously (the engine's functions are all async).

use std::rc::Rc;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::checkpoint::sha256_hex;
use crate::engine::Engine;
use crate::image::GrayImage;
use crate::sampler::{CfgSchedule, SampleOptions, Schedule, StepEvent};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Sampling options as JS passes them; every field is optional.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsOptions {
    steps: Option<usize>,
    cfg: Option<f32>,
    cfg_schedule: Option<String>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    schedule: Option<String>,
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
            steps: self.steps.unwrap_or(d.steps),
            cfg: self.cfg.unwrap_or(d.cfg),
            cfg_schedule: match self.cfg_schedule {
                Some(s) => s.parse::<CfgSchedule>().map_err(js_err)?,
                None => d.cfg_schedule,
            },
            temperature: self.temperature.unwrap_or(d.temperature),
            top_k: self.top_k.unwrap_or(d.top_k),
            top_p: self.top_p.unwrap_or(d.top_p),
            schedule: match self.schedule {
                Some(s) => s.parse::<Schedule>().map_err(js_err)?,
                None => d.schedule,
            },
            seed,
        })
    }
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
    #[serde(with = "serde_bytes_as_vec")]
    pixels: Vec<u8>,
}

mod serde_bytes_as_vec {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
}

fn images_to_js(images: Vec<GrayImage>) -> Result<JsValue, JsError> {
    let list: Vec<JsImage> =
        images.into_iter().map(|i| JsImage { width: i.width, height: i.height, pixels: i.pixels }).collect();
    serde_wasm_bindgen::to_value(&list).map_err(js_err)
}

#[wasm_bindgen]
pub struct WebEngine {
    engine: Rc<Engine>,
    backend: String,
}

#[wasm_bindgen]
impl WebEngine {
    /// Load checkpoint bytes after checking their sha256 against `expected_sha256` (hex; empty
    /// skips the check). `backend`: "webgpu" or "cpu".
    pub async fn load(
        bytes: Vec<u8>,
        expected_sha256: String,
        backend: String,
    ) -> Result<WebEngine, JsError> {
        if !expected_sha256.is_empty() {
            let got = sha256_hex(&bytes);
            if !got.eq_ignore_ascii_case(&expected_sha256) {
                return Err(JsError::new(&format!(
                    "checkpoint hash mismatch: expected {expected_sha256}, got {got}"
                )));
            }
        }
        let device = match backend.as_str() {
            "cpu" => Device::flex(),
            "webgpu" => Device::wgpu_options()
                .init_async()
                .await
                .map_err(|e| JsError::new(&format!("WebGPU initialisation failed: {e:?}")))?,
            other => return Err(JsError::new(&format!("unknown backend '{other}' (webgpu, cpu)"))),
        };
        let engine = Engine::from_bytes(&bytes, &device).map_err(js_err)?;
        Ok(WebEngine { engine: Rc::new(engine), backend })
    }

    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// sha256 of the loaded checkpoint.
    pub fn checksum(&self) -> String {
        self.engine.checksum.clone()
    }

    #[wasm_bindgen(js_name = classNames)]
    pub fn class_names(&self) -> Vec<String> {
        self.engine.meta.class_names.clone()
    }

    /// Generate one image per class id; `on_step` receives `{step, steps, positions, gridH,
    /// gridW, tokens}` (tokens: -1 where not decoded yet) after every step.
    pub fn generate(
        &self,
        classes: Vec<u32>,
        options: JsValue,
        on_step: js_sys::Function,
    ) -> Result<js_sys::Promise, JsError> {
        let opts = parse_options(options)?;
        let classes: Vec<usize> = classes.into_iter().map(|c| c as usize).collect();
        let engine = Rc::clone(&self.engine);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let mut cb = step_callback(&on_step);
            let images = engine.generate(&classes, &opts, &mut cb).await.map_err(js_err)?;
            Ok(images_to_js(images)?)
        }))
    }
}

fn parse_options(options: JsValue) -> Result<SampleOptions, JsError> {
    let js: JsOptions = if options.is_undefined() || options.is_null() {
        JsOptions::default()
    } else {
        serde_wasm_bindgen::from_value(options).map_err(js_err)?
    };
    js.into_options()
}

fn step_callback(f: &js_sys::Function) -> impl FnMut(&StepEvent) + '_ {
    move |e: &StepEvent| {
        let step = JsStep {
            step: e.step,
            steps: e.steps,
            positions: &e.positions,
            grid_h: e.grid_h,
            grid_w: e.grid_w,
            tokens: e.tokens.iter().map(|t| t.map_or(-1, |c| c as i32)).collect(),
        };
        if let Ok(v) = serde_wasm_bindgen::to_value(&step) {
            let _ = f.call1(&JsValue::NULL, &v);
        }
    }
}
