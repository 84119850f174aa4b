//! `sandwich serve campaign.db`: the rater web app from the shell, until Ctrl-C.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use sandwich_core::feedback::Campaign;
use sandwich_serve::ServeOptions;

pub(crate) fn serve(path: &Path, host: String, port: u16, public_url: Option<String>) -> ExitCode {
    let campaign = match Campaign::open(path) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("sandwich serve: {}", e.with_causes());
            return ExitCode::FAILURE;
        }
    };
    let opts = ServeOptions {
        host,
        port,
        public_url,
    };
    let server = match sandwich_serve::serve(campaign.clone(), &opts) {
        Ok(s) => s,
        Err(e) => {
            let cause = std::error::Error::source(&e)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            eprintln!("sandwich serve: {e}{cause}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "serving '{}' at {} (Ctrl-C stops)",
        campaign.spec().name,
        server.url()
    );
    match campaign.links(server.url()) {
        Ok(links) => {
            let rater = links
                .column("rater")
                .ok()
                .and_then(|c| c.str().ok().cloned());
            let url = links.column("url").ok().and_then(|c| c.str().ok().cloned());
            if let (Some(r), Some(u)) = (rater, url) {
                for (r, u) in r.iter().zip(u.iter()) {
                    println!("{}\t{}", r.unwrap_or(""), u.unwrap_or(""));
                }
            }
        }
        Err(e) => eprintln!("sandwich serve: {}", e.with_causes()),
    }
    // Ctrl-C (or SIGTERM) stops the server gracefully; a kill -9 loses nothing acknowledged.
    let (tx, rx) = std::sync::mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = tx.send(());
    }) {
        eprintln!("sandwich serve: cannot handle Ctrl-C: {e}");
    }
    let _ = rx.recv();
    server.stop();
    ExitCode::SUCCESS
}
