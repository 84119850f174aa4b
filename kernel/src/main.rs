//! `sandwich`: run Lua scripts over the Sandwich workbench, serve them as a Jupyter kernel, or
//! serve a feedback campaign's rater pages.

mod alloc;
mod bar;
mod jupyter;
mod run;
mod serve;

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
    /// The Jupyter kernel: `--connection-file F` is what Jupyter runs; `install`/`uninstall`
    /// manage the kernelspec.
    Kernel {
        #[command(subcommand)]
        action: Option<KernelAction>,
        /// The connection file Jupyter wrote (ports, key).
        #[arg(long, value_name = "FILE")]
        connection_file: Option<PathBuf>,
    },
    /// Serve a feedback campaign's rater pages (made with `sw.feedback.campaign`) until Ctrl-C;
    /// prints each rater's link.
    Serve {
        /// The campaign's file.
        campaign: PathBuf,
        /// The address to listen on: loopback unless you say otherwise (put a TLS proxy in
        /// front of anything public).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The port (0: any free one).
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// The URL raters reach the server at, when not http://HOST:PORT (behind a proxy).
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
    },
    /// An experiment's sweep: `submit|status|collect|cancel|local DIR`, and `run-task DIR I`
    /// (what each Slurm array task or local worker runs). `sandwich sweep --help` lists them.
    Sweep {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// `sandwich sweep ...`, with a progress bar on stderr and Ctrl-C.
fn sweep(args: Vec<String>) -> ExitCode {
    let interrupt = sandwich_core::Interrupt::new();
    let flag = interrupt.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.is_requested() {
            std::process::exit(130);
        }
        flag.request();
    });
    let bar = bar::StderrBar::new();
    let status = sandwich_lua::sweep::main(&args, &bar, Some(&interrupt));
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}

#[derive(Subcommand)]
enum KernelAction {
    /// Write the kernelspec (`sandwich`, "Sandwich (Lua)") where Jupyter looks.
    Install {
        #[command(flatten)]
        place: Place,
    },
    /// Remove the kernelspec (from the user's and the environment's locations by default).
    Uninstall {
        #[command(flatten)]
        place: Place,
    },
}

#[derive(clap::Args)]
#[group(multiple = false)]
struct Place {
    /// The user's Jupyter data directory (the default).
    #[arg(long)]
    user: bool,
    /// The active Python environment (`$VIRTUAL_ENV`, `$CONDA_PREFIX` or python3's prefix).
    #[arg(long)]
    sys_prefix: bool,
    /// `DIR/share/jupyter/kernels`.
    #[arg(long, value_name = "DIR")]
    prefix: Option<PathBuf>,
}

impl Place {
    fn location(&self) -> Option<jupyter::install::Location> {
        use jupyter::install::Location;
        if let Some(p) = &self.prefix {
            Some(Location::Prefix(p.clone()))
        } else if self.sys_prefix {
            Some(Location::SysPrefix)
        } else if self.user {
            Some(Location::User)
        } else {
            None
        }
    }
}

fn kernel(action: Option<KernelAction>, connection_file: Option<PathBuf>) -> ExitCode {
    let outcome = match (action, connection_file) {
        (Some(KernelAction::Install { place }), None) => {
            let location = place.location().unwrap_or(jupyter::install::Location::User);
            jupyter::install::install(&location).map(|dir| {
                println!("installed the Sandwich (Lua) kernelspec in {}", dir.display());
            })
        }
        (Some(KernelAction::Uninstall { place }), None) => {
            jupyter::install::uninstall(place.location().as_ref()).map(|removed| {
                if removed.is_empty() {
                    println!("no Sandwich kernelspec found");
                }
                for dir in removed {
                    println!("removed {}", dir.display());
                }
            })
        }
        (None, Some(file)) => jupyter::run(&file),
        (None, None) => Err(anyhow::anyhow!(
            "kernel: expected --connection-file FILE (Jupyter passes it), or `install` / `uninstall`"
        )),
        (Some(_), Some(_)) => Err(anyhow::anyhow!(
            "kernel: --connection-file goes without `install` / `uninstall`"
        )),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandwich: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    // First: when evcxr starts this binary as the process that runs Rust cells (or as its rustc
    // wrapper), this takes over and never returns.
    #[cfg(feature = "rust-cells")]
    evcxr::runtime_hook();
    alloc::keep_freed_memory();
    sandwich_core::pin_thread_count();
    sandwich_core::compute_on_this_thread();
    // Sweeps started from this process run their tasks with this same binary.
    if let Ok(exe) = std::env::current_exe() {
        sandwich_lua::sweep::set_worker(vec![
            exe.display().to_string(),
            "sweep".into(),
            "run-task".into(),
        ]);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Run { code, file, args } => run::run(code, file, args),
        Command::Kernel {
            action,
            connection_file,
        } => kernel(action, connection_file),
        Command::Serve {
            campaign,
            host,
            port,
            public_url,
        } => serve::serve(&campaign, host, port, public_url),
        Command::Sweep { args } => sweep(args),
    }
}
