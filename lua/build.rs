//! Embeds the Lua reference (`docs/*.md`, one page per function) so that the kernel can show a
//! function's page on inspection without the source tree at hand, and records the git revision
//! for experiment manifests.

use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("docs");
    println!("cargo:rerun-if-changed=docs");
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .expect("lua/docs exists")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_stem()?.to_str()?.to_string();
            (path.extension()? == "md" && name != "README").then_some(name)
        })
        .collect();
    pages.sort();
    let mut out = String::from("/// (function name, its doc page), sorted by name.\npub(crate) static DOCS: &[(&str, &str)] = &[\n");
    // Paths relative to the crate, resolved when the crate compiles: a target directory shared
    // by two checkouts must not point one checkout's binary at the other's pages.
    for name in pages {
        out.push_str(&format!(
            "    ({name:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/docs/{name}.md\"))),\n"
        ));
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("docs.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");

    // The commit the binary is built from, for experiment manifests (none outside a git clone).
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&manifest_dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(rev) = rev {
        println!("cargo:rustc-env=SANDWICH_GIT_REVISION={rev}");
    }
    // A commit moves the branch HEAD names, not HEAD itself: watch both.
    println!("cargo:rerun-if-changed=../.git/HEAD");
    if let Ok(head) = std::fs::read_to_string(Path::new(&manifest_dir).join("../.git/HEAD")) {
        if let Some(branch) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=../.git/{branch}");
        }
    }
}
