//! `sandwich kernel install | uninstall`: the kernelspec Jupyter finds (`kernel.json` and two
//! logos) in the user's, the Python environment's (`--sys-prefix`) or a given prefix's
//! `share/jupyter/kernels/sandwich`.

use std::path::PathBuf;

use serde_json::json;

pub const NAME: &str = "sandwich";

/// Where to put the kernelspec.
#[derive(Clone, Debug)]
pub enum Location {
    User,
    SysPrefix,
    Prefix(PathBuf),
}

fn user_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("JUPYTER_DATA_DIR") {
        return Ok(PathBuf::from(d).join("kernels"));
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("kernel install: HOME is not set (use --prefix DIR)"))?;
    Ok(if cfg!(target_os = "macos") {
        home.join("Library/Jupyter/kernels")
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".local/share"))
            .join("jupyter/kernels")
    })
}

/// The active Python environment: `$VIRTUAL_ENV`, `$CONDA_PREFIX`, else `python3`'s `sys.prefix`.
fn sys_prefix() -> anyhow::Result<PathBuf> {
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(p) = std::env::var_os(var) {
            return Ok(PathBuf::from(p));
        }
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.prefix)"])
        .output()
        .map_err(|e| anyhow::anyhow!("kernel install --sys-prefix: cannot run python3: {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "kernel install --sys-prefix: python3 failed to report sys.prefix"
    );
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

pub fn kernels_dir(location: &Location) -> anyhow::Result<PathBuf> {
    Ok(match location {
        Location::User => user_dir()?,
        Location::SysPrefix => sys_prefix()?.join("share/jupyter/kernels"),
        Location::Prefix(p) => p.join("share/jupyter/kernels"),
    })
}

/// Writes the kernelspec; returns its directory.
pub fn install(location: &Location) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("kernel install: cannot locate this executable: {e}"))?;
    let dir = kernels_dir(location)?.join(NAME);
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("kernel install: cannot create {}: {e}", dir.display()))?;
    let spec = json!({
        "argv": [exe.display().to_string(), "kernel", "--connection-file", "{connection_file}"],
        "display_name": "Sandwich (Lua)",
        "language": "lua",
        "interrupt_mode": "message",
        "metadata": {},
    });
    let write = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        std::fs::write(dir.join(name), bytes).map_err(|e| {
            anyhow::anyhow!(
                "kernel install: cannot write {}: {e}",
                dir.join(name).display()
            )
        })
    };
    write(
        "kernel.json",
        serde_json::to_string_pretty(&spec)?.as_bytes(),
    )?;
    write("logo-32x32.png", &logo(32))?;
    write("logo-64x64.png", &logo(64))?;
    Ok(dir)
}

/// Removes the kernelspec from every location that has one; returns what was removed.
pub fn uninstall(location: Option<&Location>) -> anyhow::Result<Vec<PathBuf>> {
    let candidates: Vec<Location> = match location {
        Some(l) => vec![l.clone()],
        None => vec![Location::User, Location::SysPrefix],
    };
    let mut removed = Vec::new();
    for l in candidates {
        let Ok(dir) = kernels_dir(&l).map(|d| d.join(NAME)) else {
            continue;
        };
        if dir.join("kernel.json").is_file() {
            std::fs::remove_dir_all(&dir).map_err(|e| {
                anyhow::anyhow!("kernel uninstall: cannot remove {}: {e}", dir.display())
            })?;
            removed.push(dir);
        }
    }
    Ok(removed)
}

/// A sandwich (bread, lettuce, tomato, bread) as an RGBA PNG of `size` × `size`.
fn logo(size: usize) -> Vec<u8> {
    let layers: [(f64, f64, [u8; 4]); 5] = [
        (0.18, 0.38, [222, 172, 98, 255]), // top slice
        (0.38, 0.48, [96, 172, 64, 255]),  // lettuce
        (0.48, 0.58, [214, 64, 52, 255]),  // tomato
        (0.58, 0.66, [250, 214, 90, 255]), // cheese
        (0.66, 0.82, [206, 154, 84, 255]), // bottom slice
    ];
    let mut raw = Vec::with_capacity(size * (size * 4 + 1));
    for y in 0..size {
        raw.push(0); // filter: none
        let fy = (y as f64 + 0.5) / size as f64;
        for x in 0..size {
            let fx = (x as f64 + 0.5) / size as f64;
            let inset = if fy < 0.3 {
                0.12 + (0.3 - fy) * 0.8
            } else {
                0.1
            };
            let pixel = layers
                .iter()
                .find(|(top, bottom, _)| fy >= *top && fy < *bottom)
                .filter(|_| fx > inset && fx < 1.0 - inset)
                .map_or([0, 0, 0, 0], |l| l.2);
            raw.extend_from_slice(&pixel);
        }
    }
    png(size as u32, &raw)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG with stored (uncompressed) deflate blocks: tiny images need no compressor.
fn png(size: u32, raw: &[u8]) -> Vec<u8> {
    let mut z = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, c) in chunks.iter().enumerate() {
        z.push(u8::from(i + 1 == chunks.len()));
        let len = c.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &z);
    chunk(b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }
}
