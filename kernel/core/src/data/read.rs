//! Readers: eager (`read_*`) and lazy (`scan_*`).
//!
//! Paths are checked before polars sees them so that a missing file is an `Io` error that names
//! the path, not a polars message about an empty source.

use std::fs::File;
use std::num::NonZeroUsize;
use std::path::Path;

use polars::prelude::*;

use super::options::{CsvReadOptions, IpcReadOptions, JsonReadOptions, ParquetReadOptions};
use crate::{Error, Result};

/// Opens a file to read. A directory is an error here: opening one succeeds on Linux and the
/// first read fails inside the reader, where polars unwraps it (a panic).
pub(crate) fn open(op: &'static str, path: &Path) -> Result<File> {
    if path.is_dir() {
        return Err(Error::invalid(
            op,
            "path",
            "a file",
            format!("'{}', a directory", path.display()),
        ));
    }
    File::open(path).map_err(|source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    })
}

fn ensure_exists(op: &'static str, path: &Path) -> Result<()> {
    open(op, path).map(drop)
}

/// One ASCII character from a string option (separators, quotes).
pub(crate) fn ascii_char(op: &'static str, arg: &'static str, s: &str) -> Result<u8> {
    match s.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(Error::InvalidArgument {
            op,
            arg,
            expected: "a single ASCII character".into(),
            got: format!("{s:?}"),
        }),
    }
}

fn optional_quote(op: &'static str, s: &str) -> Result<Option<u8>> {
    if s.is_empty() {
        Ok(None)
    } else {
        ascii_char(op, "quote_char", s).map(Some)
    }
}

impl crate::Options for CsvReadOptions {
    fn check(&self, op: &'static str) -> Result<()> {
        ascii_char(op, "separator", &self.separator)?;
        optional_quote(op, &self.quote_char)?;
        if self.comment_prefix.as_deref() == Some("") {
            return Err(Error::invalid(
                op,
                "comment_prefix",
                "a non-empty prefix (leave it out for none)",
                "\"\"",
            ));
        }
        Ok(())
    }
}

fn infer_length(n: usize) -> Option<usize> {
    // polars reads every row when the length is None; 0 is the user's spelling of that.
    (n > 0).then_some(n)
}

fn context(path: &Path) -> String {
    format!("cannot read '{}'", path.display())
}

/// Runs a reader, turning a panic inside it into an error: polars' Parquet metadata parser,
/// for one, panics on some corrupt files ("thrift bool field"), and a corrupt file must not
/// kill the script that reads it.
fn guarded<T>(op: &'static str, path: &Path, read: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|payload| {
        let what = crate::panic_message(&*payload);
        Err(Error::invalid(
            op,
            "path",
            "a readable file",
            format!(
                "'{}', which the reader could not parse ({what})",
                path.display()
            ),
        ))
    })
}

/// Reads a CSV file.
pub fn read_csv(path: impl AsRef<Path>, opts: &CsvReadOptions) -> Result<DataFrame> {
    const OP: &str = "read_csv";
    crate::Options::check(opts, OP)?;
    let path = path.as_ref();
    ensure_exists(OP, path)?;
    let parse = CsvParseOptions::default()
        .with_separator(ascii_char(OP, "separator", &opts.separator)?)
        .with_quote_char(optional_quote(OP, &opts.quote_char)?)
        .with_try_parse_dates(opts.try_parse_dates)
        .with_truncate_ragged_lines(opts.truncate_ragged_lines)
        .with_comment_prefix(opts.comment_prefix.as_deref())
        .with_null_values(
            opts.null_values
                .clone()
                .map(|v| NullValues::AllColumns(v.into_iter().map(Into::into).collect())),
        );
    guarded(OP, path, || {
        CsvReadOptions_::default()
            .with_has_header(opts.has_header)
            .with_columns(
                opts.columns
                    .as_ref()
                    .map(|c| c.iter().map(|s| PlSmallStr::from(s.as_str())).collect()),
            )
            .with_n_rows(opts.n_rows)
            .with_skip_rows(opts.skip_rows)
            .with_infer_schema_length(infer_length(opts.infer_schema_length))
            .with_ignore_errors(opts.ignore_errors)
            .with_parse_options(parse)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(Error::polars(OP, context(path)))
    })
}

// polars' own options type shares the name of ours.
use polars::prelude::CsvReadOptions as CsvReadOptions_;

/// Reads a Parquet file.
pub fn read_parquet(path: impl AsRef<Path>, opts: &ParquetReadOptions) -> Result<DataFrame> {
    const OP: &str = "read_parquet";
    let path = path.as_ref();
    let file = open(OP, path)?;
    guarded(OP, path, || {
        ParquetReader::new(file)
            .with_columns(opts.columns.clone())
            .with_slice(opts.n_rows.map(|n| (0, n)))
            .finish()
            .map_err(Error::polars(OP, context(path)))
    })
}

/// Reads an Arrow IPC (Feather v2) file.
pub fn read_ipc(path: impl AsRef<Path>, opts: &IpcReadOptions) -> Result<DataFrame> {
    const OP: &str = "read_ipc";
    let path = path.as_ref();
    let file = open(OP, path)?;
    guarded(OP, path, || {
        IpcReader::new(file)
            .with_columns(opts.columns.clone())
            .with_n_rows(opts.n_rows)
            .finish()
            .map_err(Error::polars(OP, context(path)))
    })
}

/// Reads a JSON Lines file (one object per line).
pub fn read_json(path: impl AsRef<Path>, opts: &JsonReadOptions) -> Result<DataFrame> {
    const OP: &str = "read_json";
    let path = path.as_ref();
    let file = open(OP, path)?;
    guarded(OP, path, || {
        JsonReader::new(file)
            .with_json_format(JsonFormat::JsonLines)
            .infer_schema_len(NonZeroUsize::new(opts.infer_schema_length))
            .with_projection(
                opts.columns
                    .as_ref()
                    .map(|c| c.iter().map(|s| PlSmallStr::from(s.as_str())).collect()),
            )
            .with_ignore_errors(opts.ignore_errors)
            .finish()
            .map_err(Error::polars(OP, context(path)))
    })
}

/// Starts a lazy query over a CSV file; nothing is read until the query is collected.
pub fn scan_csv(path: impl AsRef<Path>, opts: &CsvReadOptions) -> Result<LazyFrame> {
    const OP: &str = "scan_csv";
    crate::Options::check(opts, OP)?;
    let path = path.as_ref();
    ensure_exists(OP, path)?;
    let separator = ascii_char(OP, "separator", &opts.separator)?;
    let quote = optional_quote(OP, &opts.quote_char)?;
    let null_values = opts
        .null_values
        .clone()
        .map(|v| NullValues::AllColumns(v.into_iter().map(Into::into).collect()));
    let comment: Option<PlSmallStr> = opts.comment_prefix.as_deref().map(Into::into);
    LazyCsvReader::new(PlRefPath::from(path.to_string_lossy().as_ref()))
        .with_has_header(opts.has_header)
        .with_n_rows(opts.n_rows)
        .with_skip_rows(opts.skip_rows)
        .with_infer_schema_length(infer_length(opts.infer_schema_length))
        .with_ignore_errors(opts.ignore_errors)
        .map_parse_options(move |p| {
            p.with_separator(separator)
                .with_quote_char(quote)
                .with_null_values(null_values.clone())
                .with_comment_prefix(comment.as_deref())
        })
        .with_try_parse_dates(opts.try_parse_dates)
        .with_truncate_ragged_lines(opts.truncate_ragged_lines)
        .finish()
        .map(|lf| select_columns(lf, opts.columns.as_deref()))
        .map_err(Error::polars(OP, context(path)))
}

/// The lazy readers take `columns` as a projection: polars pushes it down into the scan.
fn select_columns(lf: LazyFrame, columns: Option<&[String]>) -> LazyFrame {
    match columns {
        Some(cols) => lf.select(cols.iter().map(|c| col(c.as_str())).collect::<Vec<_>>()),
        None => lf,
    }
}

/// Starts a lazy query over a Parquet file.
pub fn scan_parquet(path: impl AsRef<Path>, opts: &ParquetReadOptions) -> Result<LazyFrame> {
    const OP: &str = "scan_parquet";
    let path = path.as_ref();
    ensure_exists(OP, path)?;
    let args = ScanArgsParquet {
        n_rows: opts.n_rows,
        ..Default::default()
    };
    LazyFrame::scan_parquet(PlRefPath::from(path.to_string_lossy().as_ref()), args)
        .map(|lf| select_columns(lf, opts.columns.as_deref()))
        .map_err(Error::polars(OP, context(path)))
}
