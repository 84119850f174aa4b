//! Options of the readers and writers.
//!
//! Every struct denies unknown fields: front ends deserialize user option tables straight into
//! them, so that a typo such as `seperator` is an error that lists the valid keys instead of an
//! option silently ignored.

use serde::Deserialize;

/// Options of [`read_csv`](crate::read_csv) and [`scan_csv`](crate::scan_csv).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvReadOptions {
    /// Field separator, one ASCII character.
    pub separator: String,
    pub has_header: bool,
    /// Read only these columns.
    pub columns: Option<Vec<String>>,
    /// Stop after this many rows.
    pub n_rows: Option<usize>,
    /// Lines to skip before the header.
    pub skip_rows: usize,
    /// Rows used to infer the schema; `0` reads the whole file first.
    pub infer_schema_length: usize,
    /// Strings read as null.
    pub null_values: Option<Vec<String>>,
    /// Quote character, one ASCII character; an empty string turns quoting off.
    pub quote_char: String,
    /// Lines starting with this prefix are skipped.
    pub comment_prefix: Option<String>,
    pub try_parse_dates: bool,
    /// Rows that do not parse become nulls instead of an error.
    pub ignore_errors: bool,
    /// Lines with too many fields are cut instead of raising an error.
    pub truncate_ragged_lines: bool,
}

impl Default for CsvReadOptions {
    fn default() -> Self {
        Self {
            separator: ",".into(),
            has_header: true,
            columns: None,
            n_rows: None,
            skip_rows: 0,
            infer_schema_length: 100,
            null_values: None,
            quote_char: "\"".into(),
            comment_prefix: None,
            try_parse_dates: false,
            ignore_errors: false,
            truncate_ragged_lines: false,
        }
    }
}

/// Options of [`read_parquet`](crate::read_parquet) and [`scan_parquet`](crate::scan_parquet).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParquetReadOptions {
    pub columns: Option<Vec<String>>,
    pub n_rows: Option<usize>,
}

/// Options of [`read_ipc`](crate::read_ipc) (Arrow IPC / Feather v2 files).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpcReadOptions {
    pub columns: Option<Vec<String>>,
    pub n_rows: Option<usize>,
}

/// Options of [`read_json`](crate::read_json) (JSON Lines: one object per line).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonReadOptions {
    /// Rows used to infer the schema; `0` reads them all.
    pub infer_schema_length: usize,
    /// Read only these columns.
    pub columns: Option<Vec<String>>,
    pub ignore_errors: bool,
}

impl Default for JsonReadOptions {
    fn default() -> Self {
        Self {
            infer_schema_length: 100,
            columns: None,
            ignore_errors: false,
        }
    }
}

/// Options of [`write_csv`](crate::write_csv).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvWriteOptions {
    pub separator: String,
    pub include_header: bool,
    pub quote_char: String,
    /// How nulls are written.
    pub null_value: String,
    /// Digits after the decimal point for floats; all significant digits when absent.
    pub float_precision: Option<usize>,
}

impl Default for CsvWriteOptions {
    fn default() -> Self {
        Self {
            separator: ",".into(),
            include_header: true,
            quote_char: "\"".into(),
            null_value: String::new(),
            float_precision: None,
        }
    }
}

/// Options of [`write_parquet`](crate::write_parquet).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParquetWriteOptions {
    /// `uncompressed`, `snappy`, `gzip`, `lz4` or `zstd`.
    pub compression: String,
}

impl Default for ParquetWriteOptions {
    fn default() -> Self {
        Self {
            compression: "zstd".into(),
        }
    }
}

/// Options of [`write_ipc`](crate::write_ipc).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpcWriteOptions {
    /// `uncompressed`, `lz4` or `zstd`.
    pub compression: String,
}

impl Default for IpcWriteOptions {
    fn default() -> Self {
        Self {
            compression: "uncompressed".into(),
        }
    }
}

/// Options of [`write_json`](crate::write_json). None yet; the struct exists so that unknown
/// keys are still rejected.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonWriteOptions {}
