//! Batched sampling with a KV cache, and the log-probabilities of given completions.
//!
//! Each prompt has its own generator derived from (seed, prompt index), so a prompt's sample does
//! not depend on the batch it was in: the same seed gives the same text at any batch size.

use candle_core::{DType, Tensor, D};
use polars::prelude::*;
use serde::Deserialize;

use super::{Head, Inputs, Model, Padding};
use crate::nn::log_softmax_last_dim;
use crate::{Error, Interrupt, Progress, Result, Rng};

fn max_new() -> usize {
    64
}
fn one() -> f64 {
    1.0
}
fn eight() -> usize {
    8
}

/// Sampling settings. `temperature = 0` (or `greedy`) picks the most likely token.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateOptions {
    #[serde(default = "max_new")]
    pub max_new_tokens: usize,
    #[serde(default = "one")]
    pub temperature: f64,
    #[serde(default)]
    pub greedy: bool,
    #[serde(default)]
    pub top_k: Option<usize>,
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Generation ends when the completion contains one of these (the text is cut before it).
    #[serde(default)]
    pub stop: Vec<String>,
    /// Token ids that end generation, besides the tokenizer's EOS.
    #[serde(default)]
    pub stop_tokens: Vec<u32>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "eight")]
    pub batch_size: usize,
    /// Wrap each prompt as a user message in the tokenizer's chat template, ending where the
    /// assistant's answer begins (HF's `apply_chat_template(add_generation_prompt=True)`).
    #[serde(default)]
    pub chat: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

/// One completion.
#[derive(Clone, Debug)]
pub struct Generation {
    pub prompt: String,
    pub completion: String,
    pub token_ids: Vec<u32>,
    /// The model's log-probability of each generated token (temperature 1, no truncation): what
    /// preference objectives need, whatever the sampling settings were.
    pub logprobs: Vec<f32>,
    /// `stop` (EOS, a stop token or a stop string) or `length`.
    pub finish_reason: &'static str,
}

impl crate::Options for GenerateOptions {
    fn check(&self, op: &'static str) -> Result<()> {
        use crate::validate::{non_negative, positive_count, positive_count_opt};
        positive_count(op, "max_new_tokens", self.max_new_tokens)?;
        positive_count(op, "batch_size", self.batch_size)?;
        non_negative(op, "temperature", self.temperature)?;
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(Error::invalid(op, "top_p", "a probability in (0, 1]", p));
            }
        }
        positive_count_opt(op, "top_k", self.top_k)
    }
}

/// Picks a token from `logits` (f32, one row) under the options.
fn sample(logits: &[f32], o: &GenerateOptions, rng: &mut Rng) -> u32 {
    let argmax = || {
        logits
            .iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            )
            .0 as u32
    };
    if o.greedy || o.temperature == 0.0 {
        return argmax();
    }
    // Candidates in the order sampling walks them: highest logit first, ties by token id.
    // Sorting the whole vocabulary every token was a tenth of sampling time at batch 16, and
    // the mass is nearly always in the first few dozen, so the order is built lazily (below).
    let mut cand: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, l as f64 / o.temperature))
        .collect();
    let mut order = LazyOrder::default();
    if let Some(k) = o.top_k {
        order.extend(&mut cand, k);
        cand.truncate(k);
    }
    let max = cand.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
    // From here on `cand` holds unnormalised probabilities.
    cand.iter_mut().for_each(|c| c.1 = (c.1 - max).exp());
    let mut z: f64 = cand.iter().map(|c| c.1).sum();
    let mut n = cand.len();
    if let Some(top_p) = o.top_p {
        // The nucleus: the shortest prefix whose probability reaches top_p.
        n = order.prefix(&mut cand, |acc| acc >= top_p * z);
        z = cand[..n].iter().map(|c| c.1).sum();
    }
    let target = rng.uniform() * z;
    let i = order.prefix(&mut cand[..n], |acc| acc > target);
    cand[i - 1].0
}

/// Sorts a candidate list on demand: `done` leading entries are in their final order.
#[derive(Default)]
struct LazyOrder {
    done: usize,
}

impl LazyOrder {
    fn cmp(a: &(u32, f64), b: &(u32, f64)) -> std::cmp::Ordering {
        b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
    }

    /// Puts the first `k` entries of `c` in their final order.
    fn extend(&mut self, c: &mut [(u32, f64)], k: usize) {
        let k = k.min(c.len());
        if k <= self.done {
            return;
        }
        let rest = &mut c[self.done..];
        let want = k - self.done;
        if want < rest.len() {
            rest.select_nth_unstable_by(want - 1, Self::cmp);
        }
        rest[..want].sort_by(Self::cmp);
        self.done = k;
    }

    /// The length of the shortest ordered prefix of `c` whose running sum of weights makes
    /// `stop` true (all of `c` when none does), ordering more of `c` as the walk needs it.
    fn prefix(&mut self, c: &mut [(u32, f64)], stop: impl Fn(f64) -> bool) -> usize {
        let mut acc = 0.0;
        for i in 0..c.len() {
            if i >= self.done {
                self.extend(c, (self.done * 8).max(64));
            }
            acc += c[i].1;
            if stop(acc) {
                return i + 1;
            }
        }
        c.len()
    }
}

impl Model {
    /// Completes each prompt (encoded with the tokenizer's special tokens).
    pub fn generate(
        &self,
        prompts: &[String],
        o: &GenerateOptions,
        progress: &dyn Progress,
        interrupt: Option<&Interrupt>,
    ) -> Result<Vec<Generation>> {
        const OP: &str = "generate";
        crate::Options::check(o, OP)?;
        if self.head != Head::Lm {
            return Err(Error::invalid(
                OP,
                "model",
                "a model with an 'lm' head",
                format!("head '{}'", self.head.name()),
            ));
        }
        let tok = self.require_tokenizer(OP)?;
        let mut stops: Vec<u32> = o.stop_tokens.clone();
        stops.extend(tok.eos);
        let vocab = self.arch.vocab_size() as u32;
        if let Some(bad) = stops.iter().find(|&&t| t >= vocab) {
            return Err(Error::invalid(
                OP,
                "stop_tokens",
                format!("ids below vocab_size = {vocab}"),
                bad,
            ));
        }
        let encoded = self.prompt_ids(OP, prompts, o.chat)?;
        let mut out = Vec::with_capacity(prompts.len());
        progress.start(OP, prompts.len());
        let result = (|| -> Result<()> {
            for (chunk_no, chunk) in encoded.chunks(o.batch_size).enumerate() {
                let first = chunk_no * o.batch_size;
                let longest = chunk.iter().map(Vec::len).max().unwrap_or(0);
                if longest + o.max_new_tokens > self.arch.max_positions() {
                    return Err(Error::invalid(
                        OP,
                        "max_new_tokens",
                        format!(
                            "prompt + completion within the model's {} positions",
                            self.arch.max_positions()
                        ),
                        format!("a {longest}-token prompt + {}", o.max_new_tokens),
                    ));
                }
                let mut rngs: Vec<Rng> = (0..chunk.len())
                    .map(|i| Rng::derived(o.seed, (first + i) as u64))
                    .collect();
                let mut x = Inputs::pad(chunk, tok.pad, Padding::Left)?;
                let mut mask = x.mask.clone();
                let mut cache = self.new_cache();
                let mut gen: Vec<Vec<u32>> = vec![Vec::new(); chunk.len()];
                let mut lps: Vec<Vec<f32>> = vec![Vec::new(); chunk.len()];
                let mut texts: Vec<Option<String>> = vec![None; chunk.len()];
                let mut done = vec![None::<&'static str>; chunk.len()];
                for _ in 0..o.max_new_tokens {
                    if let Some(i) = interrupt {
                        i.check()?;
                    }
                    let hidden = self.hidden(&x, Some(&mut cache), false)?;
                    let last = hidden.narrow(1, x.len - 1, 1)?;
                    let logits = self.lm_logits(&last)?.squeeze(1)?.to_dtype(DType::F32)?;
                    let logp: Vec<Vec<f32>> = log_softmax_last_dim(&logits)?.to_vec2()?;
                    let raw: Vec<Vec<f32>> = logits.to_vec2()?;
                    let mut next = Vec::with_capacity(chunk.len());
                    for r in 0..chunk.len() {
                        if done[r].is_some() {
                            next.push(tok.pad);
                            continue;
                        }
                        let t = sample(&raw[r], o, &mut rngs[r]);
                        gen[r].push(t);
                        lps[r].push(logp[r][t as usize]);
                        next.push(t);
                        if stops.contains(&t) {
                            done[r] = Some("stop");
                        } else if !o.stop.is_empty() {
                            let text = tok.decode(&gen[r], true)?;
                            if let Some(cut) =
                                o.stop.iter().filter_map(|s| text.find(s.as_str())).min()
                            {
                                texts[r] = Some(text[..cut].to_string());
                                done[r] = Some("stop");
                            }
                        }
                    }
                    if done.iter().all(Option::is_some) {
                        break;
                    }
                    let past = x.total();
                    let mut grown = Vec::with_capacity(chunk.len() * (past + 1));
                    for r in 0..chunk.len() {
                        grown.extend_from_slice(&mask[r * past..(r + 1) * past]);
                        grown.push(u8::from(done[r].is_none()));
                    }
                    mask = grown;
                    x = Inputs::step(next, mask.clone(), past);
                }
                for r in 0..chunk.len() {
                    let completion = match texts[r].take() {
                        Some(t) => t,
                        None => tok.decode(&gen[r], true)?,
                    };
                    out.push(Generation {
                        prompt: prompts[first + r].clone(),
                        completion,
                        token_ids: std::mem::take(&mut gen[r]),
                        logprobs: std::mem::take(&mut lps[r]),
                        finish_reason: done[r].unwrap_or("length"),
                    });
                }
                progress.update(out.len(), "");
            }
            Ok(())
        })();
        progress.finish();
        result?;
        Ok(out)
    }

    /// The token ids generation starts from: each prompt with the tokenizer's special tokens,
    /// or, with `chat`, as a user message in the chat template ending where the answer begins.
    pub fn prompt_ids(
        &self,
        op: &'static str,
        prompts: &[String],
        chat: bool,
    ) -> Result<Vec<Vec<u32>>> {
        if !chat {
            return self.encode_batch(op, prompts, usize::MAX);
        }
        let tok = self.require_tokenizer(op)?;
        // The template writes any BOS itself: encoded without special tokens, as HF does.
        prompts
            .iter()
            .map(|p| {
                let text = tok.apply_chat(&[("user".to_string(), p.clone())], true)?;
                tok.encode(&text, false)
            })
            .collect()
    }

    /// The log-probability of each completion token given its prompt: (per-token, sum).
    /// The prompt is encoded with special tokens, the completion without (as SFT trains it).
    pub fn logprobs(
        &self,
        prompts: &[String],
        completions: &[String],
        batch_size: usize,
    ) -> Result<Vec<(Vec<f32>, f64)>> {
        const OP: &str = "logprobs";
        crate::validate::positive_count(OP, "batch_size", batch_size)?;
        if prompts.len() != completions.len() {
            return Err(Error::invalid(
                OP,
                "completions",
                format!("{} completions (one per prompt)", prompts.len()),
                completions.len(),
            ));
        }
        let tok = self.require_tokenizer(OP)?;
        let mut out = Vec::with_capacity(prompts.len());
        let pairs: Vec<(Vec<u32>, usize)> = prompts
            .iter()
            .zip(completions)
            .map(|(p, c)| {
                let mut ids = tok.encode(p, true)?;
                let n_prompt = ids.len();
                ids.extend(tok.encode(c, false)?);
                if n_prompt == 0 {
                    return Err(Error::invalid(
                        OP,
                        "prompts",
                        "prompts of at least one token",
                        "an empty prompt",
                    ));
                }
                Ok((ids, n_prompt))
            })
            .collect::<Result<_>>()?;
        for chunk in pairs.chunks(batch_size) {
            let seqs: Vec<Vec<u32>> = chunk.iter().map(|(s, _)| s.clone()).collect();
            let x = Inputs::pad(&seqs, tok.pad, Padding::Right)?;
            let hidden = self.hidden(&x, None, false)?;
            let logp = log_softmax_last_dim(&self.lm_logits(&hidden)?.to_dtype(DType::F32)?)?;
            // Gather log p(token t | tokens < t) at the positions before each token.
            let ids = Tensor::from_slice(&x.ids, (x.batch, x.len), self.device())?;
            let next = ids.narrow(1, 1, x.len - 1)?.unsqueeze(D::Minus1)?;
            let picked: Vec<Vec<f32>> = logp
                .narrow(1, 0, x.len - 1)?
                .contiguous()?
                .gather(&next.contiguous()?, D::Minus1)?
                .squeeze(D::Minus1)?
                .to_vec2()?;
            for ((seq, n_prompt), row) in chunk.iter().zip(picked) {
                let toks: Vec<f32> = row[n_prompt - 1..seq.len() - 1].to_vec();
                let sum = toks.iter().map(|&v| v as f64).sum();
                out.push((toks, sum));
            }
        }
        Ok(out)
    }
}

fn list_f64(name: &str, rows: impl Iterator<Item = Vec<f64>>) -> Column {
    let series: Vec<Series> = rows.map(|v| Series::new("".into(), v)).collect();
    Column::new(name.into(), series)
}

/// Generations as a DataFrame: `prompt, completion, n_tokens, logprob (sum), finish_reason,
/// token_ids (list), token_logprobs (list)`.
pub fn generations_frame(gens: &[Generation]) -> Result<DataFrame> {
    let token_ids: Vec<Series> = gens
        .iter()
        .map(|g| {
            Series::new(
                "".into(),
                g.token_ids.iter().map(|&t| t as i64).collect::<Vec<_>>(),
            )
        })
        .collect();
    DataFrame::new_infer_height(vec![
        Column::new(
            "prompt".into(),
            gens.iter().map(|g| g.prompt.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "completion".into(),
            gens.iter()
                .map(|g| g.completion.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "n_tokens".into(),
            gens.iter()
                .map(|g| g.token_ids.len() as i64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "logprob".into(),
            gens.iter()
                .map(|g| g.logprobs.iter().map(|&v| v as f64).sum::<f64>())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "finish_reason".into(),
            gens.iter().map(|g| g.finish_reason).collect::<Vec<_>>(),
        ),
        Column::new("token_ids".into(), token_ids),
        list_f64(
            "token_logprobs",
            gens.iter()
                .map(|g| g.logprobs.iter().map(|&v| v as f64).collect()),
        ),
    ])
    .map_err(Error::polars("generate", "building the result table"))
}

/// Log-probabilities as a DataFrame: `prompt, completion, logprob, n_tokens, token_logprobs`.
pub fn logprobs_frame(
    prompts: &[String],
    completions: &[String],
    lps: &[(Vec<f32>, f64)],
) -> Result<DataFrame> {
    DataFrame::new_infer_height(vec![
        Column::new("prompt".into(), prompts.to_vec()),
        Column::new("completion".into(), completions.to_vec()),
        Column::new(
            "logprob".into(),
            lps.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        ),
        Column::new(
            "n_tokens".into(),
            lps.iter().map(|(t, _)| t.len() as i64).collect::<Vec<_>>(),
        ),
        list_f64(
            "token_logprobs",
            lps.iter()
                .map(|(t, _)| t.iter().map(|&v| v as f64).collect()),
        ),
    ])
    .map_err(Error::polars("logprobs", "building the result table"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sampling as it was written first: sort the whole vocabulary, normalise, walk.
    fn sample_by_full_sort(logits: &[f32], o: &GenerateOptions, rng: &mut Rng) -> u32 {
        let mut cand: Vec<(u32, f64)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l as f64 / o.temperature))
            .collect();
        cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if let Some(k) = o.top_k {
            cand.truncate(k);
        }
        let max = cand[0].1;
        let mut probs: Vec<f64> = cand.iter().map(|(_, l)| (l - max).exp()).collect();
        let z: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= z);
        if let Some(top_p) = o.top_p {
            let mut acc = 0.0;
            let keep = probs
                .iter()
                .position(|p| {
                    acc += p;
                    acc >= top_p
                })
                .map_or(probs.len(), |i| i + 1);
            probs.truncate(keep);
            let z: f64 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= z);
        }
        let u = rng.uniform();
        let mut acc = 0.0;
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if u < acc {
                return cand[i].0;
            }
        }
        cand[probs.len() - 1].0
    }

    #[test]
    fn lazy_ordering_samples_what_a_full_sort_samples() {
        let mut gen = Rng::new(7);
        for (k, p, t, spread) in [
            (None, None, 1.0, 3.0),
            (None, None, 0.7, 0.5), // flat: the walk goes deep into the vocabulary
            (Some(50), None, 1.0, 3.0),
            (None, Some(0.9), 1.0, 3.0),
            (Some(200), Some(0.95), 1.3, 1.0),
            (None, Some(0.999), 1.0, 0.1),
        ] {
            let o = GenerateOptions {
                top_k: k,
                top_p: p,
                temperature: t,
                ..Default::default()
            };
            for row in 0..40 {
                // Ties on purpose: logits rounded to a coarse grid. `+ 0.0` turns −0 into +0:
                // the full sort's `total_cmp` put +0 before −0, an order between equal logits
                // that the lazy one (ties by token id) does not keep.
                let logits: Vec<f32> = (0..5000)
                    .map(|_| ((gen.normal() * spread * 8.0).round() / 8.0 + 0.0) as f32)
                    .collect();
                let (mut a, mut b) = (Rng::new(row), Rng::new(row));
                for _ in 0..50 {
                    assert_eq!(
                        sample(&logits, &o, &mut a),
                        sample_by_full_sort(&logits, &o, &mut b),
                        "top_k {k:?}, top_p {p:?}, temperature {t}"
                    );
                }
            }
        }
    }
}
