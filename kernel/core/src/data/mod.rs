//! Tables: reading and writing the formats researchers exchange, and summaries.

mod columns;
mod describe;
mod options;
mod read;
mod write;

pub use columns::{column_as_strings, column_floats, column_strings};
pub use describe::describe;
pub use options::{
    CsvReadOptions, CsvWriteOptions, IpcReadOptions, IpcWriteOptions, JsonReadOptions,
    JsonWriteOptions, ParquetReadOptions, ParquetWriteOptions,
};
pub use read::{read_csv, read_ipc, read_json, read_parquet, scan_csv, scan_parquet};
pub use write::{write_csv, write_ipc, write_json, write_parquet};
