//! A word-level tokenizer for a task: one token per whitespace-separated word of its inputs,
//! plus `[PAD]`, `[UNK]` and a `[CLS]` that starts every sequence (what an encoder pools).
//! Models trained from scratch on a task learn from words far faster than from byte-level BPE
//! pieces: sequences are several times shorter and every token means something.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;
use serde_json::json;

use crate::{column_strings, Error, Result};

/// Writes `tokenizer.json` and `tokenizer_config.json` (Hugging Face formats, loadable by
/// `tokenizers` and transformers) for the words of `df[columns]` into `dir`; returns the
/// vocabulary size. Words are ordered by frequency, then alphabetically, so the file is a
/// function of the data alone.
pub fn word_tokenizer(df: &DataFrame, columns: &[&str], dir: &Path) -> Result<usize> {
    const OP: &str = "tasks.tokenizer";
    let mut counts: HashMap<String, usize> = HashMap::new();
    for col in columns {
        for text in column_strings(OP, df, col)? {
            for w in text.split_whitespace() {
                *counts.entry(w.to_string()).or_default() += 1;
            }
        }
    }
    let mut words: Vec<(String, usize)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let post_processor = json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}},
    });
    let config = json!({
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "cls_token": "[CLS]",
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    write_word_level(
        OP,
        dir,
        &["[PAD]", "[UNK]", "[CLS]"],
        "[UNK]",
        words.into_iter().map(|(w, _)| w),
        post_processor,
        config,
    )
}

/// Writes a whitespace-split, word-level `tokenizer.json` and its `tokenizer_config.json` into
/// `dir` (created): `specials` first (ids 0, 1, ...; special added tokens), then `words` in
/// order, each once. Returns the vocabulary size.
pub(crate) fn write_word_level(
    op: &'static str,
    dir: &Path,
    specials: &[&str],
    unk: &str,
    words: impl IntoIterator<Item = String>,
    post_processor: serde_json::Value,
    config: serde_json::Value,
) -> Result<usize> {
    let mut vocab = serde_json::Map::new();
    for w in specials.iter().map(|s| s.to_string()).chain(words) {
        if !vocab.contains_key(&w) {
            let id = vocab.len();
            vocab.insert(w, json!(id));
        }
    }
    let added: Vec<_> = specials
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"id": i, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        })
        .collect();
    let size = vocab.len();
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": post_processor,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": unk},
    });
    std::fs::create_dir_all(dir).map_err(Error::io(op, dir))?;
    for (name, value) in [
        ("tokenizer.json", tokenizer),
        ("tokenizer_config.json", config),
    ] {
        let path = dir.join(name);
        let text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
        std::fs::write(&path, text).map_err(Error::io(op, &path))?;
    }
    Ok(size)
}
