//! A batch of token sequences as the models take it: ids, the attention mask over cached and new
//! positions, and position ids. Kept on the host: the masks and RoPE tables are built from them
//! there (a few kilobytes) and uploaded once per forward.

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// Which end of a sequence padding goes to: right for training (positions start at 0), left for
/// generation (every row's next token lands in the same column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    Left,
    Right,
}

#[derive(Clone, Debug)]
pub struct Inputs {
    pub batch: usize,
    /// New positions per row.
    pub len: usize,
    /// Positions already in the KV cache.
    pub past: usize,
    /// (batch, len) token ids.
    pub ids: Vec<u32>,
    /// (batch, past + len): 1 where a position holds a real token.
    pub mask: Vec<u8>,
    /// (batch, len): the position of each new token in its own sequence.
    pub positions: Vec<u32>,
}

impl Inputs {
    /// Pads `seqs` to a common length with `pad_id`.
    pub fn pad(seqs: &[Vec<u32>], pad_id: u32, side: Padding) -> Result<Self> {
        let len = seqs.iter().map(Vec::len).max().unwrap_or(0);
        if seqs.is_empty() || len == 0 {
            return Err(Error::InvalidArgument {
                op: "model",
                arg: "inputs",
                expected: "at least one non-empty sequence".into(),
                got: format!("{} sequences, the longest of length {len}", seqs.len()),
            });
        }
        let batch = seqs.len();
        let mut ids = Vec::with_capacity(batch * len);
        let mut mask = Vec::with_capacity(batch * len);
        for s in seqs {
            let pad = len - s.len();
            let (left, right) = match side {
                Padding::Left => (pad, 0),
                Padding::Right => (0, pad),
            };
            ids.extend(std::iter::repeat_n(pad_id, left));
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(pad_id, right));
            mask.extend(std::iter::repeat_n(0u8, left));
            mask.extend(std::iter::repeat_n(1u8, s.len()));
            mask.extend(std::iter::repeat_n(0u8, right));
        }
        let positions = positions_from_mask(&mask, batch, len, 0, len);
        Ok(Self {
            batch,
            len,
            past: 0,
            ids,
            mask,
            positions,
        })
    }

    /// One new token per row after `past` cached positions; `mask` covers past and new.
    pub fn step(ids: Vec<u32>, mask: Vec<u8>, past: usize) -> Self {
        let batch = ids.len();
        let positions = positions_from_mask(&mask, batch, past + 1, past, 1);
        Self {
            batch,
            len: 1,
            past,
            ids,
            mask,
            positions,
        }
    }

    pub fn total(&self) -> usize {
        self.past + self.len
    }

    pub fn ids_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &self.ids,
            (self.batch, self.len),
            device,
        )?)
    }

    pub fn positions_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &self.positions,
            (self.batch, self.len),
            device,
        )?)
    }

    /// Whether any position is padding.
    pub fn has_padding(&self) -> bool {
        self.mask.contains(&0)
    }

    /// The additive attention mask, (batch, 1, len, past + len): 0 where a query may attend,
    /// the dtype's most negative finite value elsewhere. Finite so that a fully masked row (a
    /// padding query) gives a uniform softmax rather than NaNs; one value, not a sum of two, so
    /// that it cannot overflow to -inf.
    pub fn additive_mask(&self, causal: bool, dtype: DType, device: &Device) -> Result<Tensor> {
        let total = self.total();
        let neg = match dtype {
            DType::F16 => -65504.0f32,
            _ => f32::MIN,
        };
        let mut out = Vec::with_capacity(self.batch * self.len * total);
        for b in 0..self.batch {
            let row = &self.mask[b * total..(b + 1) * total];
            for q in 0..self.len {
                let q_abs = self.past + q;
                out.extend(row.iter().enumerate().map(|(k, &m)| {
                    if m == 0 || (causal && k > q_abs) {
                        neg
                    } else {
                        0.0
                    }
                }));
            }
        }
        Ok(Tensor::from_vec(out, (self.batch, 1, self.len, total), device)?.to_dtype(dtype)?)
    }

    /// For each row, the index (within the new positions) of its last real token.
    pub fn last_positions(&self) -> Vec<usize> {
        let total = self.total();
        (0..self.batch)
            .map(|b| {
                let row = &self.mask[b * total + self.past..(b + 1) * total];
                row.iter().rposition(|&m| m == 1).unwrap_or(self.len - 1)
            })
            .collect()
    }
}

/// Positions = number of real tokens before each one (HF's `cumsum(mask) - 1`, 0 on padding).
fn positions_from_mask(
    mask: &[u8],
    batch: usize,
    total: usize,
    from: usize,
    len: usize,
) -> Vec<u32> {
    let mut out = Vec::with_capacity(batch * len);
    for b in 0..batch {
        let row = &mask[b * total..(b + 1) * total];
        let mut seen = row[..from].iter().filter(|&&m| m == 1).count() as u32;
        for &m in &row[from..from + len] {
            out.push(if m == 1 { seen } else { 0 });
            seen += u32::from(m);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_padding_positions_start_at_the_first_token() {
        let x = Inputs::pad(&[vec![5, 6, 7], vec![8]], 0, Padding::Left).unwrap();
        assert_eq!(x.ids, vec![5, 6, 7, 0, 0, 8]);
        assert_eq!(x.mask, vec![1, 1, 1, 0, 0, 1]);
        assert_eq!(x.positions, vec![0, 1, 2, 0, 0, 0]);
        assert_eq!(x.last_positions(), vec![2, 2]);
        let r = Inputs::pad(&[vec![5, 6, 7], vec![8]], 0, Padding::Right).unwrap();
        assert_eq!(r.positions, vec![0, 1, 2, 0, 0, 0]);
        assert_eq!(r.last_positions(), vec![2, 0]);
        let s = Inputs::step(vec![1, 2], vec![1, 1, 1, 1, 0, 0, 1, 1], 3);
        assert_eq!(s.positions, vec![3, 1]);
    }

    #[test]
    fn mask_is_causal_and_hides_padding() {
        let x = Inputs::pad(&[vec![5, 6], vec![8]], 0, Padding::Left).unwrap();
        let m = x.additive_mask(true, DType::F32, &Device::Cpu).unwrap();
        let v: Vec<f32> = m.flatten_all().unwrap().to_vec1().unwrap();
        let n = f32::MIN;
        assert_eq!(v, vec![0.0, n, 0.0, 0.0, n, n, n, 0.0]);
    }
}
