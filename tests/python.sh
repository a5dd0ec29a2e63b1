#!/bin/sh
# The Python package (python/): `pip install --no-index --no-build-isolation`
# of a copy of the folder (pip writes build files next to the sources) into a
# scratch folder, then its unittest suite against the libqlm just built,
# qlm-run and the tiny model, then the lookup of a libqlm placed in the
# installed package.  Uses python3 from PATH, else /usr/bin/python3: the
# first with pip and a setuptools that builds wheels (setuptools >= 70.1, or
# the wheel package; Debian: python3-pip python3-setuptools python3-wheel);
# skips without one, or without a shared libqlm (a --disable-shared build).
. "${top_srcdir:-.}/tests/run_common.sh"
M=$(need_fixture tiny-q8.qlm) || exit $?

abspath() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd)" "$(basename "$1")"); }

PY=
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import sys, setuptools, importlib.util as u
sys.exit(sys.version_info < (3, 8) or
         not (u.find_spec("wheel") or u.find_spec("setuptools.command.bdist_wheel")))' \
        >/dev/null 2>&1 && "$p" -m pip --version >/dev/null 2>&1; then
        PY=$p
        break
    fi
done
[ -n "$PY" ] || skip "no Python 3.8+ with pip, setuptools and wheel (python3 or /usr/bin/python3)"
lib=
for f in "$top_builddir/.libs/libqlm.so.0" "$top_builddir/.libs/libqlm.0.dylib"; do
    [ -f "$f" ] && lib=$(abspath "$f") && break
done
[ -n "$lib" ] || skip "no shared libqlm in $top_builddir/.libs (built with --disable-shared?)"
echo "python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')"

cp -R "$top_srcdir/python" "$T/src" && chmod -R u+w "$T/src" || exit 99
PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 "$PY" -m pip install --quiet --no-index \
    --no-build-isolation --no-deps --target "$T/site" "$T/src" >"$T/pip.log" 2>&1
rc=$?
[ $rc -eq 0 ] && [ -f "$T/site/qlm/__init__.py" ] && pass "pip install --no-index ./python" ||
    { fail "pip install: status $rc"; cat "$T/pip.log"; finish; }

export QLM_LIBRARY="$lib" QLM_TEST_MODEL="$(abspath "$M")" QLM_RUN="$(abspath "$QLM_RUN")"
export QLM_TEST_SRCDIR="$(cd "$top_srcdir" && pwd)" PYTHONPATH="$T/site"
# From $T, so that `import qlm` finds the installed package, not a source folder.
where=$(cd "$T" && "$PY" -c 'import qlm; print(qlm.__file__)')
[ "$where" = "$T/site/qlm/__init__.py" ] && pass "the installed package is imported" ||
    fail "qlm imported from '$where'"
(cd "$T" && "$PY" -m unittest discover -s "$T/src/tests" -t "$T/src/tests" -v) >"$T/ut.log" 2>&1
rc=$?
cat "$T/ut.log"
[ $rc -eq 0 ] && ! grep -q 'skipped' "$T/ut.log" && pass "python/tests (unittest)" ||
    fail "python/tests: status $rc (or tests skipped)"

# Without $QLM_LIBRARY: a libqlm next to the installed package is the one loaded.
cp "$lib" "$T/site/qlm/$(basename "$lib")" || exit 99
got=$(cd "$T" && env -u QLM_LIBRARY "$PY" -c '
import sys, qlm, qlm._lib
with qlm.Model(sys.argv[1]) as m:
    print("".join(m.generate("Once", max_tokens=3, temperature=0)) != "", *qlm._lib._loaded)
' "$QLM_TEST_MODEL" 2>&1)
[ "$got" = "True $T/site/qlm/$(basename "$lib")" ] && pass "libqlm found next to the package" ||
    fail "library lookup: $got"
finish
