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

type FxMap<K> = HashMap<K, u32, BuildHasherDefault<FxHasher>>;

/// Codes in first-seen order through a hash map.
fn first_seen_codes<K: Copy + Eq + std::hash::Hash>(
    values: impl Iterator<Item = K>,
    n: usize,
) -> (Vec<K>, Vec<u32>) {
    let mut index: FxMap<K> = HashMap::default();
    let mut keys = Vec::new();
    let mut codes = Vec::with_capacity(n);
    for v in values {
        let next = keys.len() as u32;
        codes.push(*index.entry(v).or_insert_with(|| {
            keys.push(v);
            next
        }));
    }
    (keys, codes)
}

/// Sorts the (few) distinct keys and remaps the codes to that order — sorting every row's key
/// would cost far more on a million rows. Equal keys under different codes merge into one.
fn sorted<K: Ord>(keys: Vec<K>, mut codes: Vec<u32>) -> (Vec<K>, Vec<u32>) {
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| keys[a as usize].cmp(&keys[b as usize]));
    let mut remap = vec![0u32; keys.len()];
    let mut distinct: Vec<u32> = Vec::with_capacity(keys.len());
    for &old in &order {
        if distinct
            .last()
            .is_none_or(|&last| keys[last as usize] != keys[old as usize])
        {
            distinct.push(old);
        }
        remap[old as usize] = distinct.len() as u32 - 1;
    }
    codes.iter_mut().for_each(|c| *c = remap[*c as usize]);
    let mut slots: Vec<Option<K>> = keys.into_iter().map(Some).collect();
    let keys = distinct
        .iter()
        .map(|&o| slots[o as usize].take().expect("each key taken once"))
        .collect();
    (keys, codes)
}

/// Integer keys: a direct lookup table when their range is small next to the row count (ids
/// usually are), else hashing.
fn int_codes(values: &Int64Chunked) -> (Vec<i64>, Vec<u32>) {
    let n = values.len();
    let (Some(min), Some(max)) = (values.min(), values.max()) else {
        return (Vec::new(), Vec::new());
    };
    let span = max.abs_diff(min);
    if span > (2 * n as u64).max(1 << 16) {
        let (keys, codes) = first_seen_codes(values.into_no_null_iter(), n);
        return sorted(keys, codes);
    }
    // Mark the values present, number them in order, then look each row up.
    let mut slot = vec![u32::MAX; span as usize + 1];
    for v in values.into_no_null_iter() {
        slot[v.abs_diff(min) as usize] = 0;
    }
    let mut keys = Vec::new();
    for (i, s) in slot.iter_mut().enumerate() {
        if *s == 0 {
            *s = keys.len() as u32;
            keys.push(min.wrapping_add(i as i64));
        }
    }
    let codes = values
        .into_no_null_iter()
        .map(|v| slot[v.abs_diff(min) as usize])
        .collect();
    (keys, codes)
}

/// String keys. A string of at most 12 bytes lives inside its 16-byte Arrow view, so such rows
/// are hashed as one 128-bit integer instead of byte by byte (several times faster on a million
/// rows); longer ones by their bytes. Two views of one short string are equal when their padding
/// is zero, as polars writes them; should another writer leave other bytes there, `sorted`
/// merges the duplicate keys, so the codes are right either way.
fn str_codes(values: &StringChunked) -> (Vec<String>, Vec<u32>) {
    let mut short: FxMap<u128> = HashMap::default();
    let mut long: FxMap<&str> = HashMap::default();
    let mut keys: Vec<&str> = Vec::new();
    let mut codes = Vec::with_capacity(values.len());
    for arr in values.downcast_iter() {
        for (i, view) in arr.views().iter().enumerate() {
            let next = keys.len() as u32;
            let code = if view.is_inline() {
                *short.entry(view.as_u128()).or_insert_with(|| {
                    keys.push(arr.value(i));
                    next
                })
            } else {
                let v = arr.value(i);
                *long.entry(v).or_insert_with(|| {
                    keys.push(v);
                    next
                })
            };
            codes.push(code);
        }
    }
    let (keys, codes) = sorted(keys, codes);
    (keys.into_iter().map(str::to_string).collect(), codes)
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
            let (keys, codes) = str_codes(c.str().expect("checked dtype"));
            Ok((Keys::Str(keys), codes))
        }
        dt if dt.is_integer() || dt.is_bool() => {
            let c = c
                .cast(&DataType::Int64)
                .map_err(Error::polars(op, format!("reading '{col}'")))?;
            let (keys, codes) = int_codes(c.i64().expect("cast to i64"));
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

    /// Gold labels as an index per task from a crowd-kit gold frame (`task, true_label`):
    /// `None` for tasks without gold or whose gold label no worker ever gave.
    pub fn gold_from_frame(
        &self,
        op: &'static str,
        gold: &DataFrame,
    ) -> Result<Vec<Option<usize>>> {
        let tasks = crate::column_as_strings(op, gold, "task")?;
        let truths = crate::column_as_strings(op, gold, "true_label")?;
        let truth: std::collections::HashMap<String, String> =
            tasks.into_iter().zip(truths).collect();
        let label_of: std::collections::HashMap<String, usize> = (0..self.n_labels())
            .map(|l| (self.labels.name(l), l))
            .collect();
        Ok((0..self.n_tasks())
            .map(|t| {
                truth
                    .get(&self.tasks.name(t))
                    .and_then(|l| label_of.get(l).copied())
            })
            .collect())
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
        // Tables usually come grouped by task: then the rows are already in order.
        if self.task.windows(2).all(|w| w[0] <= w[1]) {
            return (counts, (0..self.rows() as u32).collect());
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
