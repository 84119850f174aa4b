//! `sandwich-core`: the engine of the Sandwich workbench, free of any front end.
//!
//! Everything a researcher analyses is a polars [`DataFrame`](polars::prelude::DataFrame); this
//! crate owns how tables are read and written, and the interrupt flag that every long loop polls.
//! The Lua session (`sandwich-lua`), the `sandwich` binary and the Python wheel are thin layers
//! over it: no logic here may be copied into them.
//!
//! ```no_run
//! use sandwich_core::{read_csv, CsvReadOptions};
//! let df = read_csv("workbooks/data/judgments.csv", &CsvReadOptions::default())?;
//! println!("{df}");
//! # Ok::<(), sandwich_core::Error>(())
//! ```

pub mod cells;
mod data;
mod error;
pub mod experiment;
pub mod feedback;
mod interrupt;
pub mod model;
pub mod nn;
pub mod overopt;
pub mod oversight;
mod progress;
mod rng;
mod threads;
mod time;
pub mod train;
pub mod validate;

pub use data::{
    column_as_strings, column_floats, column_strings, describe, read_csv, read_ipc, read_json,
    read_parquet, scan_csv, scan_parquet, write_csv, write_ipc, write_json, write_parquet,
    CsvReadOptions, CsvWriteOptions, IpcReadOptions, IpcWriteOptions, JsonReadOptions,
    JsonWriteOptions, ParquetReadOptions, ParquetWriteOptions,
};
pub use error::{panic_message, Error, ErrorKind, Result};
pub use interrupt::Interrupt;
pub use progress::{Progress, Silent};
pub use rng::Rng;
pub use threads::{compute_on_this_thread, pin_thread_count};
pub use time::utc_now_iso8601;
pub use validate::Options;
