#!/bin/sh
# Make sure a headless Chromium is available for the HTML report's browser test
# (tests/journal_store/test_audit_report.py). Idempotent: does nothing when one is installed.
#
#   sh scripts/ensure_chromium.sh
#
# Installs Debian's `chromium` package (with `fonts-liberation` so that text is drawn, and
# without the recommended desktop daemons) when it is missing AND apt-get is available AND we
# run as root. Otherwise it says why and exits 0: the browser test then skips with its own
# message. Set VIGIE_REQUIRE_CHROMIUM=1 (CI) to make any failure to provide Chromium an error;
# the browser test reads the same variable and fails instead of skipping.
set -u

found=""
for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
        found=$(command -v "$name")
        break
    fi
done
if [ -n "$found" ]; then
    echo "ensure_chromium: found $found"
    exit 0
fi

give_up() {
    echo "ensure_chromium: $1; the report's browser test will be skipped" >&2
    if [ "${VIGIE_REQUIRE_CHROMIUM:-}" = "1" ]; then
        echo "ensure_chromium: VIGIE_REQUIRE_CHROMIUM=1: failing" >&2
        exit 1
    fi
    exit 0
}

command -v apt-get >/dev/null 2>&1 || give_up "Chromium is missing and apt-get is not available (install chromium yourself)"
[ "$(id -u)" = "0" ] || give_up "Chromium is missing and installing it needs root (run: sudo apt-get install -y chromium)"

log=$(mktemp "${TMPDIR:-/tmp}/ensure-chromium.XXXXXX")
trap 'rm -f "$log"' EXIT
echo "ensure_chromium: installing Debian's chromium (a minute or so, once)..."
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
install() {
    apt-get install -y -qq --no-install-recommends chromium fonts-liberation >>"$log" 2>&1
}
# A fresh machine may have no (or stale) package lists: update once, then retry.
if ! install; then
    if ! apt-get update -qq >>"$log" 2>&1 || ! install; then
        tail -n 20 "$log" >&2
        give_up "apt-get could not install chromium (see the lines above)"
    fi
fi
if ! command -v chromium >/dev/null 2>&1; then
    give_up "apt-get finished but no chromium binary is on PATH"
fi
echo "ensure_chromium: installed $(command -v chromium) in $(($(date +%s) - start)) s"
