//! The core's data layer, without any front end.

use polars::prelude::*;
use sandwich_core as sc;

fn sample() -> DataFrame {
    df!(
        "task" => ["t1", "t2", "t3"],
        "score" => [Some(1.5), None, Some(3.0)],
        "n" => [1i64, 2, 3]
    )
    .unwrap()
}

#[test]
fn every_format_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let df = sample();
    let p = |name: &str| dir.path().join(name);
    sc::write_csv(&df, p("a.csv"), &sc::CsvWriteOptions::default()).unwrap();
    sc::write_parquet(&df, p("a.parquet"), &sc::ParquetWriteOptions::default()).unwrap();
    sc::write_ipc(&df, p("a.ipc"), &sc::IpcWriteOptions::default()).unwrap();
    sc::write_json(&df, p("a.jsonl"), &sc::JsonWriteOptions::default()).unwrap();
    assert!(sc::read_csv(p("a.csv"), &sc::CsvReadOptions::default())
        .unwrap()
        .equals_missing(&df));
    assert!(
        sc::read_parquet(p("a.parquet"), &sc::ParquetReadOptions::default())
            .unwrap()
            .equals_missing(&df)
    );
    assert!(sc::read_ipc(p("a.ipc"), &sc::IpcReadOptions::default())
        .unwrap()
        .equals_missing(&df));
    assert!(sc::read_json(p("a.jsonl"), &sc::JsonReadOptions::default())
        .unwrap()
        .equals_missing(&df));
    let lazy = sc::scan_parquet(p("a.parquet"), &sc::ParquetReadOptions::default()).unwrap();
    assert!(lazy.collect().unwrap().equals_missing(&df));
    let lazy = sc::scan_csv(p("a.csv"), &sc::CsvReadOptions::default()).unwrap();
    assert_eq!(lazy.collect().unwrap().height(), 3);
}

#[test]
fn options_reject_unknown_keys_and_bad_values() {
    let err = serde_json::from_str::<sc::CsvReadOptions>(r#"{"seperator": ";"}"#).unwrap_err();
    assert!(
        err.to_string().contains("unknown field `seperator`"),
        "{err}"
    );
    assert!(err.to_string().contains("`separator`"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.csv");
    std::fs::write(&path, "a\n1\n").unwrap();
    let opts = sc::CsvReadOptions {
        separator: "ab".into(),
        ..Default::default()
    };
    let err = sc::read_csv(&path, &opts).unwrap_err();
    assert!(
        matches!(
            err,
            sc::Error::InvalidArgument {
                arg: "separator",
                ..
            }
        ),
        "{err}"
    );
    let err = sc::write_parquet(
        &sample(),
        dir.path().join("x.parquet"),
        &sc::ParquetWriteOptions {
            compression: "brotli".into(),
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("compression"), "{err}");
}

#[test]
fn missing_files_name_the_path_and_keep_the_io_cause() {
    let err =
        sc::read_parquet("/no/such/file.parquet", &sc::ParquetReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("/no/such/file.parquet"), "{err}");
    let source = std::error::Error::source(&err).expect("a cause");
    assert!(source.to_string().contains("No such file"), "{source}");
}

#[test]
fn describe_lays_out_statistics_like_py_polars() {
    let d = sc::describe(&sample()).unwrap();
    assert_eq!(d.width(), 4);
    let score = d.column("score").unwrap().f64().unwrap().clone();
    let score: Vec<Option<f64>> = (0..score.len()).map(|i| score.get(i)).collect();
    // score = 1.5, null, 3.0: count 2, one null, mean 2.25, std sqrt(1.125), nearest-rank
    // quartiles 1.5 / 3.0 / 3.0 (py-polars' describe uses interpolation="nearest").
    let std = 1.125f64.sqrt();
    assert_eq!(
        score,
        vec![
            Some(2.0),
            Some(1.0),
            Some(2.25),
            Some(std),
            Some(1.5),
            Some(1.5),
            Some(3.0),
            Some(3.0),
            Some(3.0)
        ]
    );
    let task = d.column("task").unwrap().str().unwrap().clone();
    let task: Vec<Option<&str>> = (0..task.len()).map(|i| task.get(i)).collect();
    assert_eq!(task[0], Some("3"));
    assert_eq!(task[4], Some("t1"));
    assert_eq!(task[8], Some("t3"));
}

#[test]
fn interrupt_flag_is_shared_by_clones() {
    let a = sc::Interrupt::new();
    let b = a.clone();
    assert!(a.check().is_ok());
    b.request();
    assert!(matches!(a.check(), Err(sc::Error::Interrupted)));
    a.clear();
    assert!(!b.is_requested());
}
