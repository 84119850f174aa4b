//! Writers. Each writes the whole frame or fails; a failed write names the path.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use super::options::{CsvWriteOptions, IpcWriteOptions, JsonWriteOptions, ParquetWriteOptions};
use super::read::ascii_char;
use crate::{Error, Result};

fn create(op: &'static str, path: &Path) -> Result<File> {
    File::create(path).map_err(|source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    })
}

fn context(path: &Path) -> String {
    format!("cannot write '{}'", path.display())
}

fn invalid(op: &'static str, arg: &'static str, expected: &str, got: &str) -> Error {
    Error::InvalidArgument {
        op,
        arg,
        expected: expected.into(),
        got: format!("{got:?}"),
    }
}

impl crate::Options for CsvWriteOptions {
    fn check(&self, op: &'static str) -> Result<()> {
        ascii_char(op, "separator", &self.separator)?;
        ascii_char(op, "quote_char", &self.quote_char)?;
        Ok(())
    }
}

/// Writes a CSV file.
pub fn write_csv(df: &DataFrame, path: impl AsRef<Path>, opts: &CsvWriteOptions) -> Result<()> {
    const OP: &str = "write_csv";
    crate::Options::check(opts, OP)?;
    let path = path.as_ref();
    let separator = ascii_char(OP, "separator", &opts.separator)?;
    let quote = ascii_char(OP, "quote_char", &opts.quote_char)?;
    let mut file = create(OP, path)?;
    CsvWriter::new(&mut file)
        .include_header(opts.include_header)
        .with_separator(separator)
        .with_quote_char(quote)
        .with_null_value(opts.null_value.as_str().into())
        .with_float_precision(opts.float_precision)
        .finish(&mut df.clone())
        .map_err(Error::polars(OP, context(path)))
}

/// Writes a Parquet file.
pub fn write_parquet(
    df: &DataFrame,
    path: impl AsRef<Path>,
    opts: &ParquetWriteOptions,
) -> Result<()> {
    const OP: &str = "write_parquet";
    let path = path.as_ref();
    let compression = match opts.compression.as_str() {
        "uncompressed" => ParquetCompression::Uncompressed,
        "snappy" => ParquetCompression::Snappy,
        "gzip" => ParquetCompression::Gzip(None),
        "lz4" => ParquetCompression::Lz4Raw,
        "zstd" => ParquetCompression::Zstd(None),
        other => {
            return Err(invalid(
                OP,
                "compression",
                "one of uncompressed, snappy, gzip, lz4, zstd",
                other,
            ))
        }
    };
    let file = create(OP, path)?;
    ParquetWriter::new(file)
        .with_compression(compression)
        .finish(&mut df.clone())
        .map(drop)
        .map_err(Error::polars(OP, context(path)))
}

/// Writes an Arrow IPC (Feather v2) file.
pub fn write_ipc(df: &DataFrame, path: impl AsRef<Path>, opts: &IpcWriteOptions) -> Result<()> {
    const OP: &str = "write_ipc";
    let path = path.as_ref();
    let compression = match opts.compression.as_str() {
        "uncompressed" => None,
        "lz4" => Some(IpcCompression::LZ4),
        "zstd" => Some(IpcCompression::ZSTD(Default::default())),
        other => {
            return Err(invalid(
                OP,
                "compression",
                "one of uncompressed, lz4, zstd",
                other,
            ))
        }
    };
    let mut file = create(OP, path)?;
    IpcWriter::new(&mut file)
        .with_compression(compression)
        .finish(&mut df.clone())
        .map_err(Error::polars(OP, context(path)))
}

/// Writes JSON Lines (one object per row).
pub fn write_json(df: &DataFrame, path: impl AsRef<Path>, _opts: &JsonWriteOptions) -> Result<()> {
    const OP: &str = "write_json";
    let path = path.as_ref();
    let mut file = create(OP, path)?;
    JsonWriter::new(&mut file)
        .with_json_format(JsonFormat::JsonLines)
        .finish(&mut df.clone())
        .map_err(Error::polars(OP, context(path)))
}
