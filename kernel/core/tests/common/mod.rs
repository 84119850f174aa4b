//! Shared by the parity tests: the PyTorch reference fixtures in `tests/parity/fixtures/`.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

/// All tensors of `tests/parity/fixtures/<name>.safetensors`, by name.
pub fn fixture(name: &str) -> HashMap<String, Tensor> {
    let path = format!(
        "{}/../../tests/parity/fixtures/{name}.safetensors",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
    );
    candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{path}: {e} (regenerate with tests/parity/make_*_fixtures.py)"))
}
