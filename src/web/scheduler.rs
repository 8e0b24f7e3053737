//! Running jobs in the worker: the step hook that reports each decoding step to JS, hands the event
//! loop one turn and stops the job when its `AbortSignal` was aborted meanwhile.
//!
//! Between two decoding steps a job yields one macrotask (a `MessageChannel` message), so that the
//! worker can handle a `cancel` message and abort the signal; the engine then returns
//! `Error::Cancelled` at that step boundary and the job's Promise rejects with "cancelled". The
//! engine, its weights and the GPU device stay loaded. The step callback's return value is
//! ignored; a callback that throws is logged and the job goes on.

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, MessageChannel, Window, WorkerGlobalScope};

use super::convert::{js_text, step_to_js};
use crate::decode::{StepEvent, StepWait};
use crate::error::Error;

/// Hands the event loop one turn: each `next_task()` resolves in a new task (a macrotask), after
/// the messages already queued for the worker. A `MessageChannel` is used because nested
/// `setTimeout(0)` calls are clamped to 4 ms; `setTimeout` is the fallback where a channel cannot be
/// made.
enum Yielder {
    Channel(MessageChannel),
    Timer,
}

impl Yielder {
    fn new() -> Self {
        MessageChannel::new().map_or(Yielder::Timer, Yielder::Channel)
    }

    /// A Promise that resolves in the next task; it rejects (and the job goes on at once) only if
    /// the browser refuses to queue the task.
    fn next_task(&self) -> Promise {
        Promise::new(&mut |resolve, reject| {
            let queued = match self {
                Yielder::Channel(channel) => {
                    channel.port1().set_onmessage(Some(&resolve));
                    channel.port2().post_message(&JsValue::UNDEFINED)
                }
                Yielder::Timer => set_timeout_0(&resolve),
            };
            if let Err(e) = queued {
                let _ = reject.call1(&JsValue::NULL, &e);
            }
        })
    }
}

impl Drop for Yielder {
    fn drop(&mut self) {
        if let Yielder::Channel(channel) = self {
            channel.port1().close();
        }
    }
}

/// `setTimeout(f, 0)` on this global scope: a worker's, or a window's.
fn set_timeout_0(f: &Function) -> Result<(), JsValue> {
    let global = js_sys::global();
    if let Some(worker) = global.dyn_ref::<WorkerGlobalScope>() {
        worker.set_timeout_with_callback(f).map(drop)
    } else if let Some(window) = global.dyn_ref::<Window>() {
        window.set_timeout_with_callback(f).map(drop)
    } else {
        Err(JsValue::from_str("neither a worker nor a window: no setTimeout"))
    }
}

/// The hook of one job: after every decoding step, report the step to the JS callback (a throw is
/// logged), then yield to the event loop and stop with `cancelled` if `signal` was aborted
/// meanwhile (the engine then returns `Error::Cancelled` at that step boundary).
pub fn step_hook(on_step: Function, signal: Option<AbortSignal>) -> impl FnMut(&StepEvent) -> StepWait {
    let yielder = Yielder::new();
    move |e: &StepEvent| {
        let reported = step_to_js(e).map_err(|err| err.to_string()).and_then(|v| {
            on_step
                .call1(&JsValue::NULL, &v)
                .map_err(|err| format!("the step callback threw: {}", js_text(&err)))
        });
        if let Err(why) = reported {
            web_sys::console::warn_1(&format!("arpg: step {}: {why}", e.step).into());
        }
        let (next, signal) = (JsFuture::from(yielder.next_task()), signal.clone());
        Box::pin(async move {
            let _ = next.await;
            if signal.is_some_and(|s| s.aborted()) { Err(Error::Cancelled) } else { Ok(()) }
        })
    }
}
