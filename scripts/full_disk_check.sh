#!/usr/bin/env bash
# A checkpoint that cannot be written (a full disk) must end the run with a non-zero exit,
# name the file and the OS reason, and leave no temp directory behind. A test cannot
# fill a disk, so this mounts a 1.2 MB tmpfs (root, or a private mount namespace via
# `unshare -rm`) and trains into it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    exec unshare -rm "$0" "$@"
fi
cargo build -q --bin stride
dir=$(mktemp -d)
trap 'umount "$dir" 2>/dev/null || true; rmdir "$dir"' EXIT
mount -t tmpfs -o size=1200k tmpfs "$dir"
set +e
RUST_BACKTRACE=0 HF_HUB_OFFLINE=1 NO_COLOR=1 target/debug/stride train --data-dir crates/stride-data/mnist-sample --epochs 3 \
    --hidden 512 --checkpoint-dir "$dir/ck" > /dev/null 2> "$dir.log"
code=$?
set -e
log=$(cat "$dir.log")
rm -f "$dir.log"
grep '^Error' <<<"$log"
leftover=$(find "$dir/ck" -name '.tmp-*' | wc -l)
[ "$code" != 0 ] || { echo "FAIL: exit status 0"; exit 1; }
grep -q "model.safetensors: .*No space left on device" <<<"$log" || { echo "FAIL: the error names no file"; exit 1; }
[ "$leftover" = 0 ] || { echo "FAIL: $leftover temp directories left"; exit 1; }
echo "ok: exit $code, no temp directory left"
