#!/usr/bin/env bash
# The README's test command, as root. Snapshots are committed; CI=true stops insta writing new ones.
# Ends with one plain summary line over every test binary.
set -euo pipefail
# No incremental cache: CI builds once, and the cache would double the target directory.
export CARGO_INCREMENTAL=0
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Lints first: a warning or an unformatted file fails CI before the long tests run
# (where the toolchain has the components; none can be fetched on a machine without them).
if cargo fmt --version >/dev/null 2>&1; then cargo fmt --all --check; else echo "rustfmt not installed: format check skipped"; fi
if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --workspace --all-targets -q -- -D warnings
else
    echo "clippy not installed: lints skipped"
fi
cargo test --workspace 2>&1 | tee "$log"
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "all test binaries: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
# The HTML report's screenshot from tests/html_report.rs, for CI to keep.
shot="${CARGO_TARGET_DIR:-target}/tmp/html-report/report.png"
if [[ -f $shot ]]; then echo "HTML report screenshot: $shot (the page: ${shot%.png}.html)"; fi
