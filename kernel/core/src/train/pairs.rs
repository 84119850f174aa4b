//! Preference pairs (`prompt, chosen, rejected`) tokenized for a reward model or DPO, and the
//! summed log-probability of completions under a policy, with its gradient.

use candle_core::{DType, Tensor};
use polars::prelude::DataFrame;
use serde::Deserialize;

use crate::model::{Inputs, Model, Padding, Tokenizer};
use crate::{column_floats, column_strings, Error, Result};

fn prompt() -> String {
    "prompt".into()
}
fn chosen() -> String {
    "chosen".into()
}
fn rejected() -> String {
    "rejected".into()
}

/// Which columns hold the pairs (TRL's names by default).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairColumns {
    #[serde(default = "prompt")]
    pub prompt: String,
    #[serde(default = "chosen")]
    pub chosen: String,
    #[serde(default = "rejected")]
    pub rejected: String,
    /// A numeric column: how much better `chosen` is (TRL's reward margin).
    #[serde(default)]
    pub margin: Option<String>,
    /// A boolean column: the two are equally good (Bradley-Terry target ½).
    #[serde(default)]
    pub tie: Option<String>,
}

impl Default for PairColumns {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

/// Tokenized pairs: each side is the prompt (with the tokenizer's special tokens) followed by
/// the completion (and EOS for a policy), cut to `max_length`.
#[derive(Clone, Debug)]
pub struct Pairs {
    pub chosen: Vec<Vec<u32>>,
    pub rejected: Vec<Vec<u32>>,
    /// Prompt tokens at the start of each chosen / rejected sequence.
    pub chosen_start: Vec<usize>,
    pub rejected_start: Vec<usize>,
    pub margin: Option<Vec<f32>>,
    /// Bradley-Terry target per pair: 1, or ½ for a tie.
    pub target: Option<Vec<f32>>,
}

impl Pairs {
    pub fn len(&self) -> usize {
        self.chosen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chosen.is_empty()
    }
}

/// A prompt and its completion as one sequence: `(ids, prompt tokens)`. The prompt keeps the
/// tokenizer's special tokens and the completion has none (as SFT trains); `eos` is appended
/// when given. Cut to `max_length`, keeping the prompt's start.
pub fn encode_completion(
    tok: &Tokenizer,
    prompt: &str,
    completion: &str,
    eos: Option<u32>,
    max_length: usize,
) -> Result<(Vec<u32>, usize)> {
    let mut ids = tok.encode(prompt, true)?;
    let start = ids.len();
    ids.extend(tok.encode(completion, false)?);
    ids.extend(eos);
    ids.truncate(max_length);
    Ok((ids, start.min(max_length)))
}

/// Reads and tokenizes the pairs of `df`. `policy`: sequences end with EOS and each must keep
/// at least one completion token after truncation (DPO scores completion tokens).
pub fn pair_dataset(
    op: &'static str,
    model: &Model,
    df: &DataFrame,
    cols: &PairColumns,
    max_length: usize,
    policy: bool,
) -> Result<Pairs> {
    let tok = model.require_tokenizer(op)?;
    if max_length < 2 || max_length > model.arch().max_positions() {
        return Err(Error::invalid(
            op,
            "max_length",
            format!(
                "2 ..= {} (the model's positions)",
                model.arch().max_positions()
            ),
            max_length,
        ));
    }
    let eos =
        if policy {
            Some(tok.eos.ok_or_else(|| {
                Error::invalid(op, "model", "a tokenizer with an EOS token", "none")
            })?)
        } else {
            None
        };
    let prompts = column_strings(op, df, &cols.prompt)?;
    let chosen = column_strings(op, df, &cols.chosen)?;
    let rejected = column_strings(op, df, &cols.rejected)?;
    if prompts.is_empty() {
        return Err(Error::invalid(op, "data", "at least one pair", "no rows"));
    }
    let mut out = Pairs {
        chosen: Vec::with_capacity(prompts.len()),
        rejected: Vec::with_capacity(prompts.len()),
        chosen_start: Vec::with_capacity(prompts.len()),
        rejected_start: Vec::with_capacity(prompts.len()),
        margin: None,
        target: None,
    };
    for (row, ((p, c), r)) in prompts.iter().zip(&chosen).zip(&rejected).enumerate() {
        for (side, text, ids, starts) in [
            ("chosen", c, &mut out.chosen, &mut out.chosen_start),
            ("rejected", r, &mut out.rejected, &mut out.rejected_start),
        ] {
            let (seq, start) = encode_completion(tok, p, text, eos, max_length)?;
            if policy && seq.len() <= start {
                return Err(Error::invalid(
                    op,
                    "max_length",
                    format!("room for the {side} completion after the prompt"),
                    format!("a {start}-token prompt in row {row} with max_length {max_length}"),
                ));
            }
            if seq.is_empty() {
                return Err(Error::invalid(
                    op,
                    "data",
                    "non-empty texts",
                    format!("an empty {side} sequence in row {row}"),
                ));
            }
            ids.push(seq);
            starts.push(start);
        }
    }
    if let Some(m) = &cols.margin {
        let v = column_floats(op, df, m)?;
        out.margin = Some(v.into_iter().map(|x| x as f32).collect());
    }
    if let Some(t) = &cols.tie {
        let s = df
            .column(t)
            .map_err(|_| Error::invalid(op, "tie", "an existing column", t))?;
        let b = s.bool().map_err(|_| {
            Error::invalid(op, "tie", "a boolean column", format!("{t}: {}", s.dtype()))
        })?;
        out.target = Some(
            b.iter()
                .enumerate()
                .map(|(row, v)| match v {
                    Some(true) => Ok(0.5),
                    Some(false) => Ok(1.0),
                    None => Err(Error::invalid(
                        op,
                        "tie",
                        "true or false in every row",
                        format!("null in row {row}"),
                    )),
                })
                .collect::<Result<_>>()?,
        );
    }
    Ok(out)
}

/// The summed log-probability of each sequence's tokens from `starts[i]` on, given what comes
/// before (B,), through the LM head with gradients; and how many tokens each sum counts.
pub fn sequence_logps(
    model: &Model,
    seqs: &[Vec<u32>],
    starts: &[usize],
    train: bool,
) -> Result<(Tensor, Vec<usize>)> {
    let pad = model.tokenizer().map(|t| t.pad).unwrap_or(0);
    let x = Inputs::pad(seqs, pad, Padding::Right)?;
    let (b, t) = (x.batch, x.len);
    if t < 2 {
        return Err(Error::invalid(
            "logprobs",
            "data",
            "sequences of at least 2 tokens",
            t,
        ));
    }
    let hidden = model.hidden(&x, None, train)?;
    let h = hidden.dim(2)?;
    // Position j − 1 predicts token j; only completion tokens (j ≥ start) go through the head.
    let (mut rows, mut targets, mut owner) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (seq, &start)) in seqs.iter().zip(starts).enumerate() {
        for (j, &tok) in seq.iter().enumerate().skip(start.max(1)) {
            rows.push((i * t + j - 1) as u32);
            targets.push(tok);
            owner.push(i as u32);
        }
    }
    let dev = hidden.device();
    let counts: Vec<usize> = seqs
        .iter()
        .zip(starts)
        .map(|(s, &st)| s.len().saturating_sub(st.max(1)))
        .collect();
    let sums = Tensor::zeros(b, DType::F32, dev)?;
    if rows.is_empty() {
        return Ok((sums, counts));
    }
    let n = rows.len();
    let picked = hidden
        .reshape((b * t, h))?
        .index_select(&Tensor::from_vec(rows, n, dev)?, 0)?;
    let logp = model.lm_logprobs(&picked, &targets, 1.0)?;
    Ok((
        sums.index_add(&Tensor::from_vec(owner, n, dev)?, &logp, 0)?,
        counts,
    ))
}
