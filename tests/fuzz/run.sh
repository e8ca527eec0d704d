#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (default 60), from the corpus kept between
# runs in $CARGO_TARGET_DIR/fuzz-corpus. Needs cargo-fuzz (cargo install cargo-fuzz); the stable
# toolchain is told to accept the fuzzer's flags with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cstrack/target}/fuzz"
corpus="$CARGO_TARGET_DIR/../fuzz-corpus"
for target in graphql_document bearer_token; do
    mkdir -p "$corpus/$target"
    cargo fuzz run --fuzz-dir . "$target" "$corpus/$target" -- -max_total_time="$seconds" -max_len=16384 2>&1 \
        | grep -E "^#[0-9]+.*(DONE|pulse)|Done|ERROR|panicked|SUMMARY" | tail -3
done
