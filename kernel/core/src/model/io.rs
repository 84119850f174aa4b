//! Reading and writing checkpoint files: safetensors (single or sharded), JSON, atomically.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{Device, Tensor};
use serde_json::Value;

use crate::{Error, Result};

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader (or a resumed run after a crash) sees the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut f = std::fs::File::create(&tmp).map_err(Error::io("save", &tmp))?;
    f.write_all(bytes).map_err(Error::io("save", &tmp))?;
    f.sync_all().map_err(Error::io("save", &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io("save", path))?;
    Ok(())
}

pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("a JSON value serialises");
    write_atomic(path, text.as_bytes())
}

pub fn read_json(op: &'static str, path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(Error::io(op, path))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            op,
            "path",
            "a JSON file",
            format!("{}: {e}", path.display()),
        )
    })
}

/// Saves tensors (made contiguous) as one safetensors file, atomically.
pub fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("tensors")
    ));
    let contiguous: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.contiguous()?)))
        .collect::<Result<_>>()?;
    candle_core::safetensors::save(&contiguous, &tmp)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(Error::io("save", &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io("save", path))?;
    Ok(())
}

/// The weight files of a checkpoint directory: `model.safetensors`, or the shards listed by
/// `model.safetensors.index.json`.
pub fn weight_files(op: &'static str, dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let v = read_json(op, &index)?;
        let map = v
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                Error::invalid(op, "path", "an index with a weight_map", index.display())
            })?;
        let mut files: Vec<PathBuf> = map
            .values()
            .filter_map(Value::as_str)
            .map(|f| dir.join(f))
            .collect();
        files.sort();
        files.dedup();
        return Ok(files);
    }
    Err(Error::invalid(
        op,
        "path",
        "a directory with model.safetensors or model.safetensors.index.json",
        dir.display(),
    ))
}

/// Memory-maps safetensors files; tensors are read one at a time onto `device`.
pub struct Weights {
    st: MmapedSafetensors,
}

impl Weights {
    pub fn open(op: &'static str, files: &[PathBuf]) -> Result<Self> {
        for f in files {
            if !f.is_file() {
                return Err(Error::invalid(
                    op,
                    "path",
                    "every shard of the checkpoint",
                    format!("no {}", f.display()),
                ));
            }
        }
        // SAFETY: the files are only read; a checkpoint rewritten while we read it is outside
        // what any loader can guard against (HF and candle map them the same way).
        let st = unsafe { MmapedSafetensors::multi(files)? };
        Ok(Self { st })
    }

    /// Names and shapes of every tensor.
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.shape().to_vec()))
            .collect()
    }

    pub fn load(&self, name: &str, device: &Device) -> Result<Tensor> {
        Ok(self.st.load(name, device)?)
    }
}
