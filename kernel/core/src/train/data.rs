//! Training examples from DataFrames: tokenized SFT pairs and classification texts with hard or
//! soft labels, and the loss of a batch of them.

use candle_core::{DType, Tensor, D};
use polars::prelude::*;

use super::loss::{class_loss, lm_loss, logconf_target, soft_class_loss, IGNORE};
use crate::model::{Head, Inputs, Model, Padding};
use crate::{column_floats, column_strings, Error, Result};

/// What an example is scored against.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Next-token prediction of the tokens whose label is not [`IGNORE`].
    Tokens(Vec<i64>),
    Class(u32),
    /// A probability for each class (weak-to-strong training's soft labels).
    Soft(Vec<f32>),
}

#[derive(Clone, Debug)]
pub struct Example {
    pub ids: Vec<u32>,
    pub target: Target,
}

/// Tokenized examples, ready for batching.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub examples: Vec<Example>,
    /// Tokens that count towards the loss, in all examples (for tokens/s).
    pub tokens: usize,
}

/// SFT examples: `prompt` (with the tokenizer's special tokens) then `completion` and EOS, the
/// loss on completion tokens only, truncated to `max_length`. With `packing`, all examples are
/// concatenated and cut into blocks of exactly `max_length` tokens (no padding; attention crosses
/// example boundaries, as TRL's packing does).
pub fn sft_dataset(
    model: &Model,
    df: &DataFrame,
    prompt: &str,
    completion: &str,
    max_length: usize,
    packing: bool,
) -> Result<Dataset> {
    const OP: &str = "train.sft";
    let tok = model.require_tokenizer(OP)?;
    let eos = tok.eos.ok_or_else(|| {
        Error::invalid(OP, "model", "a tokenizer with an EOS token (eos_token_id in config.json or eos_token in tokenizer_config.json)", "none")
    })?;
    if max_length < 2 || max_length > model.arch().max_positions() {
        return Err(Error::invalid(
            OP,
            "max_length",
            format!(
                "2 ..= {} (the model's positions)",
                model.arch().max_positions()
            ),
            max_length,
        ));
    }
    let prompts = column_strings(OP, df, prompt)?;
    let completions = column_strings(OP, df, completion)?;
    if prompts.is_empty() {
        return Err(Error::invalid(
            OP,
            "data",
            "at least one row",
            "an empty DataFrame",
        ));
    }
    let mut pairs = Vec::with_capacity(prompts.len());
    for (i, (p, c)) in prompts.iter().zip(&completions).enumerate() {
        let mut ids = tok.encode(p, true)?;
        let mut labels = vec![IGNORE; ids.len()];
        let mut comp = tok.encode(c, false)?;
        comp.push(eos);
        labels.extend(comp.iter().map(|&t| t as i64));
        ids.extend(comp);
        if !packing {
            ids.truncate(max_length);
            labels.truncate(max_length);
            // Label 0 is the first token; only positions ≥ 1 are predicted.
            if labels[1..].iter().all(|&l| l == IGNORE) {
                return Err(Error::invalid(
                    OP,
                    "max_length",
                    format!(
                        "room for completion tokens (row {} has a {}-token prompt)",
                        i + 1,
                        labels.len()
                    ),
                    max_length,
                ));
            }
        }
        pairs.push((ids, labels));
    }
    let examples: Vec<Example> = if packing {
        let ids: Vec<u32> = pairs.iter().flat_map(|(i, _)| i.iter().copied()).collect();
        let labels: Vec<i64> = pairs.iter().flat_map(|(_, l)| l.iter().copied()).collect();
        let blocks = ids.len() / max_length;
        if blocks == 0 {
            return Err(Error::invalid(
                OP,
                "packing",
                format!("at least max_length = {max_length} tokens in all"),
                ids.len(),
            ));
        }
        (0..blocks)
            .map(|b| Example {
                ids: ids[b * max_length..(b + 1) * max_length].to_vec(),
                target: Target::Tokens(labels[b * max_length..(b + 1) * max_length].to_vec()),
            })
            .filter(
                |e| matches!(&e.target, Target::Tokens(l) if l[1..].iter().any(|&x| x != IGNORE)),
            )
            .collect()
    } else {
        pairs
            .into_iter()
            .map(|(ids, labels)| Example {
                ids,
                target: Target::Tokens(labels),
            })
            .collect()
    };
    let tokens = examples
        .iter()
        .map(|e| match &e.target {
            Target::Tokens(l) => l[1..].iter().filter(|&&x| x != IGNORE).count(),
            _ => 0,
        })
        .sum();
    Ok(Dataset { examples, tokens })
}

/// Where classification labels come from.
#[derive(Clone, Debug)]
pub enum Labels {
    /// Integer classes 0..n-1 in one column.
    Column(String),
    /// One probability column per class, each row summing to 1.
    Probs(Vec<String>),
}

/// Classification examples: `text` (with special tokens, truncated to `max_length`) and its
/// label(s). The model's head must have as many outputs as there are classes.
pub fn classify_dataset(
    model: &Model,
    df: &DataFrame,
    text: &str,
    labels: &Labels,
    max_length: usize,
) -> Result<Dataset> {
    const OP: &str = "train.classify";
    let n = match model.head() {
        Head::Classify(n) => n,
        other => return Err(Error::invalid(
            OP,
            "model",
            "a model with a 'classify' head (sw.model.load(path, {head='classify', num_labels=n}))",
            format!("head '{}'", other.name()),
        )),
    };
    if max_length == 0 || max_length > model.arch().max_positions() {
        return Err(Error::invalid(
            OP,
            "max_length",
            format!("1 ..= {}", model.arch().max_positions()),
            max_length,
        ));
    }
    let texts = column_strings(OP, df, text)?;
    if texts.is_empty() {
        return Err(Error::invalid(
            OP,
            "data",
            "at least one row",
            "an empty DataFrame",
        ));
    }
    let targets: Vec<Target> = match labels {
        Labels::Column(col) => column_floats(OP, df, col)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                if v.fract() == 0.0 && v >= 0.0 && (v as usize) < n {
                    Ok(Target::Class(v as u32))
                } else {
                    Err(Error::invalid(
                        OP,
                        "label",
                        format!("class indices 0..{} in '{col}'", n - 1),
                        format!("{v} in row {}", i + 1),
                    ))
                }
            })
            .collect::<Result<_>>()?,
        Labels::Probs(cols) => {
            if cols.len() != n {
                return Err(Error::invalid(
                    OP,
                    "probs",
                    format!("{n} columns (one per class of the head)"),
                    cols.len(),
                ));
            }
            let columns: Vec<Vec<f64>> = cols
                .iter()
                .map(|c| column_floats(OP, df, c))
                .collect::<Result<_>>()?;
            (0..texts.len())
                .map(|i| {
                    let row: Vec<f64> = columns.iter().map(|c| c[i]).collect();
                    let sum: f64 = row.iter().sum();
                    if row.iter().any(|&p| !(0.0..=1.0).contains(&p)) || (sum - 1.0).abs() > 1e-4 {
                        return Err(Error::invalid(
                            OP,
                            "probs",
                            "probabilities in [0, 1] summing to 1 per row",
                            format!("{row:?} in row {}", i + 1),
                        ));
                    }
                    Ok(Target::Soft(row.iter().map(|&p| p as f32).collect()))
                })
                .collect::<Result<_>>()?
        }
    };
    let ids = model.encode_batch(OP, &texts, max_length)?;
    let examples: Vec<Example> = ids
        .into_iter()
        .zip(targets)
        .map(|(ids, target)| Example { ids, target })
        .collect();
    let tokens = examples.iter().map(|e| e.ids.len()).sum();
    Ok(Dataset { examples, tokens })
}

/// The loss of a batch and, for evaluation, (correct, counted) predictions.
pub struct BatchOutput {
    pub loss: Tensor,
    pub correct: usize,
    pub counted: usize,
    pub tokens: usize,
    /// Objective-specific metrics (TRL's names), averaged over a step's micro-batches.
    pub metrics: Vec<(&'static str, f64)>,
}

/// Weak-to-strong's auxiliary confidence loss for one micro-batch: its weight, and the
/// hardening threshold when the optimizer batch is larger than the micro-batch (computed over
/// the whole batch by the trainer, as the reference does; `None`: over this micro-batch).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AuxLoss {
    pub coef: f64,
    pub threshold: Option<f64>,
}

impl AuxLoss {
    /// No auxiliary loss.
    pub const OFF: AuxLoss = AuxLoss {
        coef: 0.0,
        threshold: None,
    };
}

/// The labels of `examples[idx]` as probability rows (B × C, row-major; a hard label is
/// one-hot) and the class each stands for.
fn soft_rows(data: &Dataset, idx: &[usize], n: usize) -> (Vec<f32>, Vec<u32>) {
    let mut weak = vec![0f32; idx.len() * n];
    let mut truth = Vec::with_capacity(idx.len());
    for (row, &i) in weak.chunks_mut(n).zip(idx) {
        match &data.examples[i].target {
            Target::Class(c) => {
                row[*c as usize] = 1.0;
                truth.push(*c);
            }
            Target::Soft(p) => {
                row.copy_from_slice(p);
                truth.push(argmax(p) as u32);
            }
            Target::Tokens(_) => unreachable!("one kind per dataset"),
        }
    }
    (weak, truth)
}

/// The model's class probabilities on `examples[idx]` (no gradient, no dropout) and their
/// labels as probability rows: what [`logconf_threshold`](super::loss::logconf_threshold)
/// needs for an optimizer batch made of several micro-batches.
pub fn class_probs(model: &Model, data: &Dataset, idx: &[usize]) -> Result<(Vec<f32>, Vec<f32>)> {
    let pad = model.tokenizer().map(|t| t.pad).unwrap_or(0);
    let seqs: Vec<Vec<u32>> = idx.iter().map(|&i| data.examples[i].ids.clone()).collect();
    let x = Inputs::pad(&seqs, pad, Padding::Right)?;
    let hidden = model.hidden(&x, None, false)?;
    let logits = model.head_logits(&hidden, &x)?.detach();
    let n = logits.dim(1)?;
    let probs: Vec<f32> = crate::nn::softmax_last_dim(&logits.to_dtype(DType::F32)?)?
        .flatten_all()?
        .to_vec1()?;
    Ok((probs, soft_rows(data, idx, n).0))
}

/// Mean loss of `examples[idx]` under `model`, with right padding. A positive `aux.coef` adds
/// weak-to-strong's auxiliary confidence loss to a classification batch (see
/// [`logconf_target`]): the labels, hard or soft, are mixed with the model's hardened
/// predictions.
pub fn batch_loss(
    model: &Model,
    data: &Dataset,
    idx: &[usize],
    train: bool,
    aux: AuxLoss,
) -> Result<BatchOutput> {
    let pad = model.tokenizer().map(|t| t.pad).unwrap_or(0);
    let seqs: Vec<Vec<u32>> = idx.iter().map(|&i| data.examples[i].ids.clone()).collect();
    let x = Inputs::pad(&seqs, pad, Padding::Right)?;
    let hidden = model.hidden(&x, None, train)?;
    let first = &data.examples[idx[0]].target;
    match first {
        Target::Tokens(_) => {
            let mut labels = Vec::with_capacity(x.batch * x.len);
            for &i in idx {
                let Target::Tokens(l) = &data.examples[i].target else {
                    unreachable!("one kind per dataset")
                };
                labels.extend_from_slice(l);
                labels.extend(std::iter::repeat_n(IGNORE, x.len - l.len()));
            }
            let logits = model.lm_logits(&hidden)?;
            let loss = lm_loss(&logits, &labels)?;
            let (correct, counted) = if train {
                (0, 0)
            } else {
                token_accuracy(&logits, &labels, x.len)?
            };
            let tokens = (0..x.batch)
                .map(|b| {
                    labels[b * x.len + 1..(b + 1) * x.len]
                        .iter()
                        .filter(|&&l| l != IGNORE)
                        .count()
                })
                .sum();
            Ok(BatchOutput {
                loss,
                correct,
                counted,
                tokens,
                metrics: Vec::new(),
            })
        }
        Target::Class(_) | Target::Soft(_) => {
            let logits = model.head_logits(&hidden, &x)?;
            let n = logits.dim(1)?;
            let (loss, truth) = if aux.coef > 0.0 {
                let (weak, truth) = soft_rows(data, idx, n);
                // The hardened predictions are a target: no gradient flows through them.
                let probs: Vec<f32> =
                    crate::nn::softmax_last_dim(&logits.to_dtype(DType::F32)?.detach())?
                        .flatten_all()?
                        .to_vec1()?;
                let target = logconf_target(&probs, &weak, n, aux.coef, aux.threshold);
                let target = Tensor::from_vec(target, (idx.len(), n), model.device())?;
                (soft_class_loss(&logits, &target)?, truth)
            } else if matches!(first, Target::Class(_)) {
                let labels: Vec<u32> = idx
                    .iter()
                    .map(|&i| match data.examples[i].target {
                        Target::Class(c) => c,
                        _ => unreachable!("one kind per dataset"),
                    })
                    .collect();
                (class_loss(&logits, &labels)?, labels)
            } else {
                let mut probs = Vec::with_capacity(idx.len() * n);
                let mut truth = Vec::with_capacity(idx.len());
                for &i in idx {
                    let Target::Soft(p) = &data.examples[i].target else {
                        unreachable!("one kind per dataset")
                    };
                    probs.extend_from_slice(p);
                    truth.push(argmax(p) as u32);
                }
                let probs = Tensor::from_vec(probs, (idx.len(), n), model.device())?;
                (soft_class_loss(&logits, &probs)?, truth)
            };
            let pred: Vec<u32> = logits.to_dtype(DType::F32)?.argmax(D::Minus1)?.to_vec1()?;
            let correct = pred.iter().zip(&truth).filter(|(a, b)| a == b).count();
            let tokens = seqs.iter().map(Vec::len).sum();
            Ok(BatchOutput {
                loss,
                correct,
                counted: truth.len(),
                tokens,
                metrics: Vec::new(),
            })
        }
    }
}

fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

/// Next-token accuracy over the counted labels.
fn token_accuracy(logits: &Tensor, labels: &[i64], len: usize) -> Result<(usize, usize)> {
    let pred: Vec<Vec<u32>> = logits.to_dtype(DType::F32)?.argmax(D::Minus1)?.to_vec2()?;
    let mut correct = 0;
    let mut counted = 0;
    for (b, row) in pred.iter().enumerate() {
        for t in 0..len - 1 {
            let l = labels[b * len + t + 1];
            if l != IGNORE {
                counted += 1;
                correct += usize::from(row[t] as i64 == l);
            }
        }
    }
    Ok((correct, counted))
}
