#!/usr/bin/env bash
# check-hardening.sh BINARY...: each binary is built as Debian hardens
# daemons: a position-independent executable, full RELRO (a GNU_RELRO
# segment and BIND_NOW), the stack protector and fortified libc calls.
# Exit 1 and say what is missing otherwise.  Needs readelf (binutils).
set -u
rc=0
for bin in "$@"; do
    missing=()
    readelf -h "$bin" | grep -q 'Type:[[:space:]]*DYN' || missing+=("PIE")
    readelf -lW "$bin" | grep -q 'GNU_RELRO' || missing+=("RELRO")
    readelf -dW "$bin" | grep -Eq 'BIND_NOW|FLAGS_1.*NOW' || missing+=("BIND_NOW")
    syms=$(readelf -sW --dyn-syms "$bin")
    grep -q '__stack_chk_fail' <<<"$syms" || missing+=("stack protector")
    grep -Eq '__[a-z]+_chk@' <<<"$syms" || missing+=("_FORTIFY_SOURCE")
    if (( ${#missing[@]} )); then
        echo "check-hardening: $bin lacks: ${missing[*]}"
        rc=1
    else
        echo "check-hardening: $bin: PIE, full RELRO, stack protector, fortified"
    fi
done
exit "$rc"
