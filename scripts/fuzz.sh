#!/usr/bin/env bash
# Bounded fuzzing of every target in fuzz/ (cargo-fuzz + libFuzzer, AddressSanitizer).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 60 s, every target
#
# Works on the stable toolchain: cargo-fuzz passes `-Z` flags to rustc, which stable accepts
# with RUSTC_BOOTSTRAP=1. Installs cargo-fuzz when missing. The corpus grows in
# fuzz/corpus/<target> (ignored by git) from the checked-in seeds in fuzz/seeds/<target>.
# A crash stops the run with exit 1 and leaves the input in fuzz/artifacts/<target>/;
# replay it with `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>`.
set -euo pipefail

seconds="${1:-60}"
shift || true
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build -O

status=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    seeds=()
    [ -d "seeds/$target" ] && seeds=("seeds/$target")
    log="$(mktemp)"
    if cargo fuzz run -O "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        runs="$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')"
        cov="$(grep -ao 'cov: [0-9]*' "$log" | tail -1)"
        echo "fuzz: $target: ${runs:-?} executions in ${seconds}s, $cov, no crash"
    else
        status=1
        echo "fuzz: $target: FAILED"
        grep -aA4 "panicked at" "$log" || true
        grep -aE "^(SUMMARY|==[0-9]+==ERROR)" "$log" || true
        grep -aA2 "Reproduce with" "$log" || tail -n 40 "$log"
    fi
    rm -f "$log"
done
exit "$status"
