//! Summary statistics of a table, laid out as py-polars' `DataFrame.describe` lays them out.

use polars::prelude::*;

use crate::{Error, Result};

const STATISTICS: [&str; 9] = [
    "count",
    "null_count",
    "mean",
    "std",
    "min",
    "25%",
    "50%",
    "75%",
    "max",
];

/// One row per statistic, one column per input column. Numeric and boolean columns are
/// summarised as `f64` (percentiles use the nearest rank, as py-polars does); other columns get
/// their counts and their smallest and largest values as strings.
pub fn describe(df: &DataFrame) -> Result<DataFrame> {
    let mut columns = Vec::with_capacity(df.width() + 1);
    columns.push(Column::new("statistic".into(), STATISTICS));
    for column in df.columns() {
        let series = column.as_materialized_series();
        let summary = if series.dtype().is_primitive_numeric() || series.dtype().is_bool() {
            numeric_summary(series)?
        } else {
            text_summary(series)?
        };
        columns.push(summary.into_column());
    }
    DataFrame::new_infer_height(columns)
        .map_err(Error::polars("describe", "cannot assemble summary"))
}

fn numeric_summary(series: &Series) -> Result<Series> {
    let err = || Error::polars("describe", format!("column '{}'", series.name()));
    let values = series.cast(&DataType::Float64).map_err(err())?;
    let ca = values.f64().map_err(err())?;
    let count = (ca.len() - ca.null_count()) as f64;
    let quantile = |q| {
        ca.quantile(q, QuantileMethod::Nearest)
            .map_err(Error::polars(
                "describe",
                format!("column '{}'", series.name()),
            ))
    };
    if count == 0.0 {
        // No values (no rows, or only nulls): every statistic but the counts is undefined,
        // and polars' quantile would index into nothing.
        let stats = [Some(0.0), Some(ca.null_count() as f64)]
            .into_iter()
            .chain(std::iter::repeat_n(None, 7))
            .collect::<Vec<Option<f64>>>();
        return Ok(Series::new(series.name().clone(), stats));
    }
    let stats = [
        Some(count),
        Some(ca.null_count() as f64),
        ca.mean(),
        ca.std(1),
        ca.min(),
        quantile(0.25)?,
        quantile(0.5)?,
        quantile(0.75)?,
        ca.max(),
    ];
    Ok(Series::new(series.name().clone(), stats))
}

fn text_summary(series: &Series) -> Result<Series> {
    let err = || Error::polars("describe", format!("column '{}'", series.name()));
    let non_null = series.drop_nulls();
    let sorted = non_null
        .sort(SortOptions::default())
        .and_then(|s| s.cast(&DataType::String))
        .map_err(err())?;
    let strings = sorted.str().map_err(err())?;
    // `get` panics on an index past the end: an empty (or all-null) column has no first value.
    let first = if strings.is_empty() {
        None
    } else {
        strings.get(0).map(str::to_owned)
    };
    let last = strings
        .len()
        .checked_sub(1)
        .and_then(|i| strings.get(i))
        .map(str::to_owned);
    let stats: [Option<String>; 9] = [
        Some(non_null.len().to_string()),
        Some(series.null_count().to_string()),
        None,
        None,
        first,
        None,
        None,
        None,
        last,
    ];
    Ok(Series::new(series.name().clone(), stats))
}
