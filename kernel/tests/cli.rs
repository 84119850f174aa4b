//! The `sandwich` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sandwich() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sandwich"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run(args: &[&str]) -> Output {
    sandwich().args(args).output().expect("run sandwich")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("sandwich {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn run_file_with_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.lua");
    std::fs::write(&script, "local sw = require('sandwich')\nprint(#arg, arg[1], arg[2], ...)\nprint(sw.frame{x = {1, 2, 3}}:height())").unwrap();
    let out = run(&["run", script.to_str().unwrap(), "one", "--two"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "2\tone\t--two\tone\t--two\n3\n");
}

#[test]
fn run_code_prints_its_value() {
    let out = run(&[
        "run",
        "-e",
        "sw.frame{x = {1, 2}}:select(sw.col('x'):sum()):column('x')[1] * 10",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "30\n");
    let out = run(&["run", "-e", "print('hi');"]);
    assert_eq!(text(&out.stdout), "hi\n");
}

#[test]
fn errors_exit_non_zero_with_traceback_and_causes() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.lua");
    std::fs::write(
        &script,
        "local function load()\n  return sw.read_csv('/no/such.csv')\nend\nload()\n",
    )
    .unwrap();
    let out = run(&["run", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("error: read_csv: cannot access '/no/such.csv'"),
        "{err}"
    );
    assert!(
        err.contains("caused by: No such file or directory"),
        "{err}"
    );
    assert!(err.contains("stack traceback:"), "{err}");
    assert!(err.contains("bad.lua:2:"), "{err}");
    assert!(err.contains("bad.lua:4:"), "{err}");

    let out = run(&["run", "-e", "error('plain failure')"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("plain failure"));

    let out = run(&["run", "-e", "if then"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("syntax error")
            || text(&out.stderr).contains("unexpected symbol")
    );

    let out = run(&["run", "/no/such/script.lua"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/no/such/script.lua"));
}

#[test]
fn ctrl_c_interrupts_a_running_script() {
    let child = sandwich()
        .args([
            "run",
            "-e",
            "print('started'); io.write(''); while true do end",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the loop runs, then send SIGINT as a terminal's Ctrl-C would.
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("interrupted"));
}

#[test]
fn explore_workbook_prints_the_analysis() {
    let root = repo_root();
    let out = sandwich()
        .current_dir(&root)
        .args(["run", "workbooks/explore.lua"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("1440 judgments of 240 questions by 15 workers"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Share of the novice -> expert gap that voting recovers"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Novice accuracy by question difficulty"),
        "{stdout}"
    );
}
