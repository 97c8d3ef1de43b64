#!/usr/bin/env bash
# The README's test command, as root. Snapshots are committed; CI=true stops insta writing new ones.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
