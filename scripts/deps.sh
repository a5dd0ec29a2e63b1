#!/bin/sh
# Installs the Debian packages qlm needs to build and test, if any is missing.
# Sourced by scripts/test.sh and scripts/quickstart.sh; $1 = "test" adds the
# test-only tools (Check is needed by configure either way).
qlm_install_deps() {
    pkgs="build-essential autoconf automake libtool pkg-config zlib1g-dev libxxhash-dev
          libjansson-dev libpcre2-dev libutf8proc-dev check"
    if [ "${1:-}" = test ]; then
        pkgs="$pkgs clang libomp-14-dev libclang-rt-14-dev gcc-aarch64-linux-gnu
              libc6-dev-arm64-cross qemu-user-static groff-base man-db
              python3-pip python3-setuptools python3-wheel"
    fi
    missing=
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "qlm: missing Debian packages:$missing" >&2
        echo "qlm: run as root, or: sudo apt-get install$missing" >&2
        return 1
    fi
    echo "qlm: installing$missing" >&2
    apt-get update -qq || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null || return 1
}
