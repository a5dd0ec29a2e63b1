#!/bin/sh
# Cross-build tests/kernels_neon_main.c with the scalar and NEON kernels for
# aarch64 and run it under qemu-user (-cpu max has dotprod and fp16).
# Exit 77 (skip) when the cross compiler or qemu is missing.
# Environment: top_srcdir (set by tests/local.am), NEON_CFLAGS,
# AARCH64_CC (default aarch64-linux-gnu-gcc), QEMU_AARCH64.
set -u
srcdir=${top_srcdir:-.}
cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
flags=${NEON_CFLAGS:--march=armv8.2-a+dotprod+fp16}
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "neon_qemu: $cc not found: skipped"
    exit 77
fi
qemu=${QEMU_AARCH64:-}
if [ -z "$qemu" ]; then
    for q in qemu-aarch64-static qemu-aarch64; do
        if command -v "$q" >/dev/null 2>&1; then qemu=$q; break; fi
    done
fi
if [ -z "$qemu" ]; then
    echo "neon_qemu: qemu-aarch64(-static) not found: skipped"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qlm-neon.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
# The cross build gets its own config.h: the host's describes x86.
printf '#define QLM_HAVE_NEON 1\n' > "$tmp/config.h"
# -ffp-contract=off for the oracle too, so the scalar f32 sums are not fused
# (the NEON integer kernels are then bit-identical to it).
if ! "$cc" -std=gnu11 -static -O2 $flags -ffp-contract=off -Wall -Wextra \
        -I"$tmp" -I"$srcdir/formats" -I"$srcdir/runtime" \
        "$srcdir/tests/kernels_neon_main.c" "$srcdir/runtime/kernels/kernels_scalar.c" \
        "$srcdir/runtime/kernels/kernels_neon.c" "$srcdir/formats/dtype.c" \
        "$srcdir/formats/traits.c" "$srcdir/formats/quant_ref.c" -o "$tmp/kernels_neon" -lm; then
    echo "neon_qemu: cross build failed"
    exit 1
fi
"$qemu" -cpu max "$tmp/kernels_neon"
