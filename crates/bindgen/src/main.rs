//! `arpg-bindgen IN.wasm OUT_DIR`: the browser runtime's JS glue, written as
//! `wasm-bindgen --target web --remove-name-section --no-typescript --out-dir OUT_DIR IN.wasm`
//! writes it (`OUT_DIR/<stem>.js` and `OUT_DIR/<stem>_bg.wasm`, byte for byte the same files).

use anyhow::{Context, Result, bail};
use wasm_bindgen_cli_support::Bindgen;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, out_dir] = args.as_slice() else {
        bail!("usage: arpg-bindgen IN.wasm OUT_DIR");
    };
    Bindgen::new()
        .input_path(input)
        .web(true)?
        .remove_name_section(true)
        .typescript(false)
        // The CLI's default, which the library's differs from: the glue's `init()` with no
        // argument fetches `<stem>_bg.wasm` beside the JS (www/worker.js calls it so).
        .omit_default_module_path(false)
        .generate(out_dir)
        .with_context(|| format!("wasm-bindgen {input} -> {out_dir}"))
}
