//! The WebGPU adapter and the backend: what the browser offers, the one definition of a software
//! adapter, and the one place that decides which backend runs the model.
//!
//! * [`probe`] asks `navigator.gpu.requestAdapter()` (in a worker or a window) and reads the
//!   adapter's `GPUAdapterInfo` into [`AdapterInfo`].
//! * [`AdapterInfo::software`] is the definition: flagged by the browser (`isFallbackAdapter`), or
//!   SwiftShader by name (older Chromium does not flag it). A software adapter is ~40x slower than
//!   the CPU backend here. The worker asks `detectAdapter()` (this probe) before it fetches the
//!   WebGPU build, and [`choose`] decides with the same flag, so the two never disagree.
//! * [`choose`]: "cpu" is burn-flex; "webgpu" is burn-wgpu on whatever adapter there is; "auto" is
//!   burn-wgpu only on a hardware adapter, else the CPU, with the reason in words.
//!
//! web-sys has typed bindings for `navigator.gpu`, `GPUAdapter` and `GPUAdapterInfo`, but only under
//! `--cfg web_sys_unstable_apis`, which this build does not set (`.cargo/config.toml`; wgpu brings
//! its own WebGPU bindings and does not need it). So `navigator` is typed and the three WebGPU reads
//! below (`gpu`, `requestAdapter`, the adapter's info fields) go through `js_sys::Reflect`.

use burn::tensor::Device;
use js_sys::{Function, Promise, Reflect};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Window, WorkerGlobalScope};

use super::convert::js_text;
use super::error::WebError;
use crate::choice::Choice;

/// What the browser says about its WebGPU adapter (`GPUAdapterInfo` plus `isFallbackAdapter`), and
/// whether this runtime counts it as software. Serialised as-is for `detectAdapter()` and `info()`.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct AdapterInfo {
    vendor: String,
    architecture: String,
    device: String,
    description: String,
    is_fallback_adapter: bool,
    /// [`AdapterInfo::is_software`], computed once when the adapter is read.
    software: bool,
    /// The adapter's `maxBufferSize` and `maxStorageBufferBindingSize`, in bytes. burn's device
    /// asks for all of the adapter's limits, and a tensor must fit in one binding.
    max_buffer_size: f64,
    max_storage_buffer_binding_size: f64,
}

impl AdapterInfo {
    /// A software adapter: flagged by the browser, or SwiftShader (older Chromium does not flag it).
    fn is_software(&self) -> bool {
        let text = format!("{} {} {} {}", self.vendor, self.architecture, self.device, self.description);
        self.is_fallback_adapter || text.to_ascii_lowercase().contains("swiftshader")
    }

    /// Whether a model whose largest tensor is `largest` (name, bytes) fits this adapter's
    /// buffers; else which limit it exceeds, and by how much, in words.
    fn check_fits(&self, (name, bytes): (&str, u64)) -> Result<(), String> {
        let limits = [
            ("maxStorageBufferBindingSize", self.max_storage_buffer_binding_size),
            ("maxBufferSize", self.max_buffer_size),
        ];
        match limits.into_iter().find(|&(_, limit)| limit > 0.0 && bytes as f64 > limit) {
            None => Ok(()),
            Some((what, limit)) => Err(format!(
                "the model's largest tensor, {name} ({:.1} MB), is {:.1} MB over this adapter's {what} of {:.1} MB",
                bytes as f64 / 1e6,
                (bytes as f64 - limit) / 1e6,
                limit / 1e6
            )),
        }
    }

    /// The adapter in words, for the reason shown to the user.
    fn label(&self) -> String {
        let parts: Vec<&str> = [&self.vendor, &self.architecture, &self.device, &self.description]
            .into_iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() { "unnamed adapter".into() } else { parts.join(" ") }
    }
}

/// `navigator` of this global scope, a worker's or a window's.
fn navigator() -> Option<JsValue> {
    let global = js_sys::global();
    if let Some(worker) = global.dyn_ref::<WorkerGlobalScope>() {
        return Some(worker.navigator().into());
    }
    global.dyn_ref::<Window>().map(|window| window.navigator().into())
}

/// `v[key]` (undefined when the read throws): only for the WebGPU objects, see the module docs.
fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// Ask the browser for a WebGPU adapter: `Ok(None)` when there is no `navigator.gpu` or no adapter;
/// `Err` when `requestAdapter()` throws or rejects.
pub async fn probe() -> Result<Option<AdapterInfo>, WebError> {
    let Some(gpu) = navigator().map(|n| get(&n, "gpu")).filter(JsValue::is_object) else {
        return Ok(None);
    };
    let adapter_err = |e: JsValue| WebError::Adapter(js_text(&e));
    let request: Function = get(&gpu, "requestAdapter")
        .dyn_into()
        .map_err(|_| WebError::Adapter("navigator.gpu.requestAdapter is not a function".into()))?;
    let promise: Promise = request
        .call0(&gpu)
        .map_err(adapter_err)?
        .dyn_into()
        .map_err(|_| WebError::Adapter("requestAdapter() did not return a Promise".into()))?;
    let adapter = JsFuture::from(promise).await.map_err(adapter_err)?;
    if !adapter.is_object() {
        return Ok(None);
    }
    // `isFallbackAdapter` moved from the adapter to its info; older browsers have it on the adapter.
    let info = get(&adapter, "info");
    let fallback = [&info, &adapter].into_iter().find_map(|v| get(v, "isFallbackAdapter").as_bool());
    let text = |key| get(&info, key).as_string().unwrap_or_default();
    let limit = |key| get(&get(&adapter, "limits"), key).as_f64().unwrap_or(0.0);
    let mut adapter = AdapterInfo {
        vendor: text("vendor"),
        architecture: text("architecture"),
        device: text("device"),
        description: text("description"),
        is_fallback_adapter: fallback.unwrap_or(false),
        software: false,
        max_buffer_size: limit("maxBufferSize"),
        max_storage_buffer_binding_size: limit("maxStorageBufferBindingSize"),
    };
    adapter.software = adapter.is_software();
    Ok(Some(adapter))
}

/// The backend `WebEngine.load` is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// WebGPU on a hardware adapter, else the CPU.
    Auto,
    /// WebGPU on any adapter, software ones included; an error when there is none.
    WebGpu,
    Cpu,
}

impl Choice for Backend {
    const ALL: &'static [Self] = &[Backend::Auto, Backend::WebGpu, Backend::Cpu];
    const WHAT: &'static str = "backend";
    fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::WebGpu => "webgpu",
            Backend::Cpu => "cpu",
        }
    }
}

crate::from_str_by_name!(Backend);

/// What runs the model, and why.
pub struct Chosen {
    pub device: Device,
    /// "webgpu" or "cpu".
    pub backend: &'static str,
    /// Why this backend, in words (shown to the user).
    pub reason: String,
    /// The WebGPU adapter the browser offered, if it did.
    pub adapter: Option<AdapterInfo>,
}

impl Chosen {
    fn cpu(reason: String, adapter: Option<AdapterInfo>) -> Self {
        Chosen { device: Device::flex(), backend: "cpu", reason, adapter }
    }
}

/// Decide the backend for `requested` and make its device. `largest`: the model's largest tensor
/// (name, bytes in f32), which WebGPU must hold in one buffer: where the adapter's limits are
/// smaller, "auto" takes the CPU and forced WebGPU is an error, saying which limit and by how much.
pub async fn choose(requested: Backend, largest: Option<(&str, u64)>) -> Result<Chosen, WebError> {
    let fits = |a: &AdapterInfo| largest.map_or(Ok(()), |t| a.check_fits(t));
    match requested {
        Backend::Cpu => Ok(Chosen::cpu("CPU forced".into(), None)),
        Backend::WebGpu => {
            let adapter = probe().await.ok().flatten();
            if let Some(Err(e)) = adapter.as_ref().map(fits) {
                return Err(WebError::AdapterLimit(e));
            }
            let device = wgpu_device().await.map_err(WebError::WebGpuInit)?;
            let reason = match &adapter {
                Some(a) if a.software => format!("WebGPU forced (software adapter: {})", a.label()),
                Some(a) => format!("WebGPU forced ({})", a.label()),
                None => "WebGPU forced".into(),
            };
            Ok(Chosen { device, backend: "webgpu", reason, adapter })
        }
        Backend::Auto => Ok(match probe().await {
            Err(e) => Chosen::cpu(format!("no WebGPU ({e}): using the CPU"), None),
            Ok(None) => Chosen::cpu("no WebGPU adapter: using the CPU".into(), None),
            Ok(Some(a)) if a.software => {
                let reason = format!(
                    "only a software WebGPU adapter ({}), slower than the CPU backend: using the CPU",
                    a.label()
                );
                Chosen::cpu(reason, Some(a))
            }
            Ok(Some(a)) => match fits(&a) {
                Err(why) => Chosen::cpu(format!("{why}: using the CPU"), Some(a)),
                Ok(()) => match wgpu_device().await {
                    Ok(device) => Chosen {
                        device,
                        backend: "webgpu",
                        reason: format!("WebGPU on {}", a.label()),
                        adapter: Some(a),
                    },
                    Err(e) => {
                        Chosen::cpu(format!("WebGPU initialisation failed ({e}): using the CPU"), Some(a))
                    }
                },
            },
        }),
    }
}

thread_local! {
    /// burn's wgpu runtime can be initialised once per thread (worker): keep its device.
    #[cfg(feature = "webgpu")]
    static WGPU_DEVICE: std::cell::RefCell<Option<Device>> = const { std::cell::RefCell::new(None) };
}

/// burn's wgpu device for this worker, initialised on first use.
#[cfg(feature = "webgpu")]
async fn wgpu_device() -> Result<Device, String> {
    if let Some(d) = WGPU_DEVICE.with(|d| d.borrow().clone()) {
        return Ok(d);
    }
    // Device loss is watched by the worker (www/worker.js, `deviceLoss()`), on the GPUDevice itself.
    let device = Device::wgpu_options().init_async().await.map_err(|e| format!("{e:?}"))?;
    WGPU_DEVICE.with(|d| *d.borrow_mut() = Some(device.clone()));
    Ok(device)
}

/// The CPU-only build (`pkg/cpu`) has no WebGPU runtime.
#[cfg(not(feature = "webgpu"))]
async fn wgpu_device() -> Result<Device, String> {
    Err("this is the CPU-only build of the runtime (pkg/cpu)".into())
}
