//! The task schema every experiment reads, and a content hash of a table for manifests.

use polars::prelude::*;

use crate::{column_floats, column_strings, Error, Result};

/// Checks a task table: `id` (unique strings), `input` (strings), `label` (integers 0..C-1,
/// C ≥ 2), optional `choices` (strings) and `difficulty` (numbers in [0, 1]); returns C.
/// Other columns are allowed and kept.
pub fn check_task(op: &'static str, df: &DataFrame) -> Result<usize> {
    if df.height() == 0 {
        return Err(Error::invalid(
            op,
            "task",
            "at least one item",
            "an empty table",
        ));
    }
    let ids = column_strings(op, df, "id")?;
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = ids.iter().find(|i| !seen.insert(i.as_str())) {
        return Err(Error::invalid(
            op,
            "task",
            "unique ids",
            format!("'{dup}' twice"),
        ));
    }
    column_strings(op, df, "input")?;
    if df.column("choices").is_ok() {
        column_strings(op, df, "choices")?;
    }
    let label = df.column("label").map_err(|_| {
        Error::invalid(
            op,
            "task",
            "a column 'label'",
            format!("columns {:?}", df.get_column_names()),
        )
    })?;
    if !label.dtype().is_integer() || label.null_count() > 0 {
        return Err(Error::invalid(
            op,
            "task",
            "integer class labels 0..C-1 in 'label', no nulls",
            label.dtype(),
        ));
    }
    let labels = label
        .cast(&DataType::Int64)
        .map_err(Error::polars(op, "reading 'label'"))?;
    let labels: Vec<i64> = labels.i64().expect("cast").into_no_null_iter().collect();
    let classes = labels.iter().copied().max().unwrap_or(0) + 1;
    if labels.iter().any(|&l| l < 0) || classes < 2 {
        return Err(Error::invalid(
            op,
            "task",
            "labels 0..C-1 with C ≥ 2",
            format!(
                "labels from {} to {}",
                labels.iter().min().unwrap_or(&0),
                classes - 1
            ),
        ));
    }
    // C is the largest label + 1, so a class that never occurs means labels that are not
    // 0..C-1 (labels 1 and 2 for two classes would make three, the first never seen).
    let mut seen_class = vec![false; classes as usize];
    for &l in &labels {
        seen_class[l as usize] = true;
    }
    let missing: Vec<usize> = (0..classes as usize).filter(|&c| !seen_class[c]).collect();
    if !missing.is_empty() {
        return Err(Error::invalid(
            op,
            "task",
            format!(
                "labels 0..C-1 with every class present (C = {classes} from the largest label)"
            ),
            format!("no item of class {missing:?}; map the labels to 0..C-1 first"),
        ));
    }
    if df.column("difficulty").is_ok() {
        let d = column_floats(op, df, "difficulty")?;
        if let Some(bad) = d.iter().find(|x| !(0.0..=1.0).contains(*x)) {
            return Err(Error::invalid(op, "task", "difficulty in [0, 1]", bad));
        }
    }
    Ok(classes as usize)
}

/// FNV-1a (64-bit) of the table as CSV: a short, stable fingerprint of data for manifests.
pub fn frame_hash(df: &DataFrame) -> Result<String> {
    let mut bytes = Vec::new();
    CsvWriter::new(&mut bytes)
        .finish(&mut df.clone())
        .map_err(Error::polars("frame_hash", "writing the table"))?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("{h:016x}"))
}
