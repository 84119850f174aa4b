//! Typed access to one column, with errors that name the operation, the column and the row.

use polars::prelude::*;

use crate::{Error, Result};

fn column<'a>(op: &'static str, df: &'a DataFrame, col: &str) -> Result<&'a Column> {
    df.column(col).map_err(|_| {
        Error::invalid(
            op,
            "data",
            format!("a column '{col}'"),
            format!("columns {:?}", df.get_column_names()),
        )
    })
}

fn missing(op: &'static str, col: &str, row: usize) -> Error {
    Error::invalid(
        op,
        "data",
        format!("no missing values in '{col}'"),
        format!("null in row {}", row + 1),
    )
}

/// The strings of `df[col]`; a missing column, another type or a null is an error.
pub fn column_strings(op: &'static str, df: &DataFrame, col: &str) -> Result<Vec<String>> {
    let c = column(op, df, col)?;
    let s = c
        .str()
        .map_err(|_| Error::invalid(op, "data", format!("column '{col}' of strings"), c.dtype()))?;
    s.iter()
        .enumerate()
        .map(|(i, v)| v.map(str::to_string).ok_or_else(|| missing(op, col, i)))
        .collect()
}

/// The values of a numeric column as f64; a missing column, another type or a null is an error.
pub fn column_floats(op: &'static str, df: &DataFrame, col: &str) -> Result<Vec<f64>> {
    let c = column(op, df, col)?;
    // Strict: a string that is not a number is an error here, not a null.
    let c = c
        .strict_cast(&DataType::Float64)
        .map_err(|_| Error::invalid(op, "data", format!("numbers in column '{col}'"), c.dtype()))?;
    c.f64()
        .expect("cast to f64")
        .iter()
        .enumerate()
        .map(|(i, v)| v.ok_or_else(|| missing(op, col, i)))
        .collect()
}

/// The values of `df[col]` of any type, as strings (labels compared across tables whose
/// columns may be typed differently, e.g. integers read from one file and strings from another).
pub fn column_as_strings(op: &'static str, df: &DataFrame, col: &str) -> Result<Vec<String>> {
    let c = column(op, df, col)?;
    let cast = c
        .cast(&DataType::String)
        .map_err(Error::polars(op, format!("reading '{col}' as text")))?;
    let frame = DataFrame::new_infer_height(vec![cast]).map_err(Error::polars(op, "reading"))?;
    column_strings(op, &frame, col)
}
