//! `sandwich`: run Lua scripts over the Sandwich workbench (and, later, the Jupyter kernel).

mod alloc;
mod bar;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sandwich",
    version,
    about = "A workbench for aligning narrowly superhuman models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Lua script (or `-e CODE`) with the `sandwich` module loaded as `sw`.
    Run {
        /// Run this code instead of a file; the value of its last expression is printed.
        #[arg(short = 'e', value_name = "CODE", conflicts_with = "file")]
        code: Option<String>,
        /// The script to run.
        #[arg(required_unless_present = "code")]
        file: Option<PathBuf>,
        /// Arguments for the script, in its `arg` table and `...`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    alloc::keep_freed_memory();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { code, file, args } => run::run(code, file, args),
    }
}
