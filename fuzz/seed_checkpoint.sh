#!/bin/sh
# Packs a real checkpoint directory ($1) into one fuzz input ($2) for the `checkpoint` target.
set -eu
python3 - "$1" "$2" <<'PY'
import struct, sys, pathlib
d = pathlib.Path(sys.argv[1])
s, m, o = ((d / f).read_bytes() for f in ("state.json", "model.safetensors", "optimizer.safetensors"))
pathlib.Path(sys.argv[2]).write_bytes(struct.pack("<II", len(s), len(m)) + s + m + o)
PY
