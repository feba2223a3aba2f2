#!/usr/bin/env bash
# Download the real libiio XML contexts the front-end tests run against (tests/test_iio_contexts.py):
# a stock ADALM-PLUTO (AD9363, 1R1T) and an AD-FMCOMMS2 (AD9361, 2R2T), as libiio's own emulation tests
# ship them. They are GPL-2.0+ test data of libiio (this project is MIT), so they are fetched, pinned by
# commit and sha256, into a cache outside the repository rather than copied in. Needs network access.
#   usage: scripts/get_iio_contexts.sh [DIR]      (default: ${XDG_CACHE_HOME:-~/.cache}/ris-isac-testbed/iio)
set -euo pipefail
DIR=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/ris-isac-testbed/iio}
BASE=${IIO_CONTEXTS_BASE:-https://raw.githubusercontent.com/analogdevicesinc/libiio}
# name in DIR | libiio commit | path in libiio | sha256
FILES=(
  "pluto.xml 078b74a378375318edee2c2f70d6a858cec80df3 tests/resources/xmls/pluto.xml f9cc0f8bcc5d19428d4110ec49e716376fb238190b4751c8751a305968fa25fd"
  "fmcomms2-3.xml 823c4f2af1d3074a8a54254c460198367926e553 tests/resources/xmls/fmcomms2.xml 14e3844dbc75c80a96065173b1ed68bcef8730f852ecd0b0333a36be48debebb"
)
mkdir -p "$DIR"
for f in "${FILES[@]}"; do
    read -r name rev path sum <<<"$f"
    if [ -f "$DIR/$name" ] && echo "$sum  $DIR/$name" | sha256sum -c --quiet - >/dev/null 2>&1; then
        echo "iio-contexts: $DIR/$name ok"; continue
    fi
    tmp=$(mktemp "$DIR/.$name.XXXXXX")
    if ! curl -fsSL --retry 2 -o "$tmp" "$BASE/$rev/$path"; then
        rm -f "$tmp"; echo "iio-contexts: error: cannot download $BASE/$rev/$path (network?)" >&2; exit 1
    fi
    if ! echo "$sum  $tmp" | sha256sum -c --quiet - >/dev/null 2>&1; then
        rm -f "$tmp"; echo "iio-contexts: error: $path at libiio $rev does not have sha256 $sum" >&2; exit 1
    fi
    mv "$tmp" "$DIR/$name"; echo "iio-contexts: $DIR/$name downloaded (libiio $rev:$path)"
done
echo "iio-contexts: run the tests with: IIO_XML_DIR=$DIR make test   (or just make test: the default cache is found)"
