//! Crowd data, encoded: `task, worker, label` rows as indices into sorted key lists, so that the
//! aggregation methods run over plain arrays. Keys keep their type (integers stay integers in the
//! results) and are sorted the way crowd-kit's pandas code sorts them (by value), which fixes the
//! tie rule: the smallest label wins.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use polars::prelude::*;

use crate::{Error, Result};

/// The distinct values of a key column, sorted.
#[derive(Clone, Debug, PartialEq)]
pub enum Keys {
    Int(Vec<i64>),
    Str(Vec<String>),
}

impl Keys {
    pub fn len(&self) -> usize {
        match self {
            Keys::Int(v) => v.len(),
            Keys::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys at `idx` as a column called `name`.
    pub fn column(&self, name: &str, idx: impl Iterator<Item = usize>) -> Column {
        match self {
            Keys::Int(v) => Column::new(name.into(), idx.map(|i| v[i]).collect::<Vec<_>>()),
            Keys::Str(v) => {
                Column::new(name.into(), idx.map(|i| v[i].as_str()).collect::<Vec<_>>())
            }
        }
    }

    /// Display form of key `i` (column names of probability tables).
    pub fn name(&self, i: usize) -> String {
        match self {
            Keys::Int(v) => v[i].to_string(),
            Keys::Str(v) => v[i].clone(),
        }
    }

    pub fn all(&self, name: &str) -> Column {
        self.column(name, 0..self.len())
    }
}

/// The Fx hash (rustc's): keys here are short strings and integers from the user's own table, so
/// SipHash's protection against adversarial keys buys nothing and costs most of the encoding time.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Codes in first-seen order through a hash map, then the (few) distinct keys are sorted and the
/// codes remapped: sorting every row's key would cost far more on a million rows.
fn codes_of<K: Copy + Ord + std::hash::Hash>(
    values: impl Iterator<Item = K>,
    n: usize,
) -> (Vec<K>, Vec<u32>) {
    let mut index: HashMap<K, u32, BuildHasherDefault<FxHasher>> = HashMap::default();
    let mut keys = Vec::new();
    let mut codes = Vec::with_capacity(n);
    for v in values {
        let next = keys.len() as u32;
        let code = *index.entry(v).or_insert_with(|| {
            keys.push(v);
            next
        });
        codes.push(code);
    }
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| keys[a as usize].cmp(&keys[b as usize]));
    let mut remap = vec![0u32; keys.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old as usize] = new as u32;
    }
    codes.iter_mut().for_each(|c| *c = remap[*c as usize]);
    let sorted = order.iter().map(|&o| keys[o as usize]).collect();
    (sorted, codes)
}

/// Factorizes a key column: the sorted distinct keys and each row's index into them.
pub fn factorize(op: &'static str, df: &DataFrame, col: &str) -> Result<(Keys, Vec<u32>)> {
    let c = df.column(col).map_err(|_| {
        Error::invalid(
            op,
            "data",
            format!("a column '{col}'"),
            format!("columns {:?}", df.get_column_names()),
        )
    })?;
    if c.null_count() > 0 {
        let row = c
            .is_null()
            .iter()
            .position(|v| v == Some(true))
            .unwrap_or(0);
        return Err(Error::invalid(
            op,
            "data",
            format!("no missing values in '{col}'"),
            format!("null in row {}", row + 1),
        ));
    }
    match c.dtype() {
        DataType::String => {
            let s = c.str().expect("checked dtype");
            let (keys, codes) = codes_of(s.iter().map(|v| v.expect("checked for nulls")), s.len());
            Ok((
                Keys::Str(keys.into_iter().map(str::to_string).collect()),
                codes,
            ))
        }
        dt if dt.is_integer() || dt.is_bool() => {
            let c = c
                .cast(&DataType::Int64)
                .map_err(Error::polars(op, format!("reading '{col}'")))?;
            let s = c.i64().expect("cast to i64");
            let (keys, codes) = codes_of(s.iter().map(|v| v.expect("checked for nulls")), s.len());
            Ok((Keys::Int(keys), codes))
        }
        other => Err(Error::invalid(
            op,
            "data",
            format!("strings or integers in '{col}'"),
            other,
        )),
    }
}

/// Categorical labels: who gave which label to which task.
#[derive(Clone, Debug)]
pub struct Crowd {
    pub tasks: Keys,
    pub workers: Keys,
    pub labels: Keys,
    pub task: Vec<u32>,
    pub worker: Vec<u32>,
    pub label: Vec<u32>,
    /// Rank of each label by its first appearance in the data: ties between labels go to the
    /// one seen first (crowd-kit's rule, which follows pandas' column order).
    pub first_seen: Vec<u32>,
}

impl Crowd {
    /// Reads `task, worker, label` (crowd-kit's columns; other columns are ignored).
    pub fn from_frame(op: &'static str, df: &DataFrame) -> Result<Self> {
        if df.height() == 0 {
            return Err(Error::invalid(
                op,
                "data",
                "at least one label",
                "an empty table",
            ));
        }
        // The three columns are independent: encode them side by side.
        let (t, w, l) = std::thread::scope(|s| {
            let t = s.spawn(|| factorize(op, df, "task"));
            let w = s.spawn(|| factorize(op, df, "worker"));
            let l = factorize(op, df, "label");
            (
                t.join().expect("encoding panicked"),
                w.join().expect("encoding panicked"),
                l,
            )
        });
        let ((tasks, task), (workers, worker), (labels, label)) = (t?, w?, l?);
        let mut first_seen = vec![u32::MAX; labels.len()];
        let mut next = 0;
        for &l in &label {
            if first_seen[l as usize] == u32::MAX {
                first_seen[l as usize] = next;
                next += 1;
            }
        }
        Ok(Self {
            tasks,
            workers,
            labels,
            task,
            worker,
            label,
            first_seen,
        })
    }

    pub fn n_tasks(&self) -> usize {
        self.tasks.len()
    }
    pub fn n_workers(&self) -> usize {
        self.workers.len()
    }
    pub fn n_labels(&self) -> usize {
        self.labels.len()
    }
    /// The most probable label of a row of probabilities; ties go to the label seen first.
    pub fn argmax(&self, row: &[f64]) -> usize {
        let mut best = 0;
        for (i, &v) in row.iter().enumerate() {
            if v > row[best] || (v == row[best] && self.first_seen[i] < self.first_seen[best]) {
                best = i;
            }
        }
        best
    }

    pub fn rows(&self) -> usize {
        self.task.len()
    }

    /// Rows of each task (CSR-style offsets into a permutation), for per-task loops.
    pub fn by_task(&self) -> (Vec<usize>, Vec<u32>) {
        let mut counts = vec![0usize; self.n_tasks() + 1];
        for &t in &self.task {
            counts[t as usize + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let mut fill = counts.clone();
        let mut order = vec![0u32; self.rows()];
        for (r, &t) in self.task.iter().enumerate() {
            order[fill[t as usize]] = r as u32;
            fill[t as usize] += 1;
        }
        (counts, order)
    }
}
