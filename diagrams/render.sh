#!/bin/sh
# Render every diagram from its source: diagrams/NAME.dot -> NAME.svg (graphviz's `dot`, which
# `sudo ./kit setup` installs). `./kit diagrams` runs this; run it from anywhere.
#
#   diagrams/render.sh           re-render into diagrams/ (commit the .dot and the .svg together)
#   diagrams/render.sh OUTDIR    render into OUTDIR instead (tests/test_diagrams.py compares)
#
# Each SVG records the sha256 of the source it was rendered from, in a comment after graphviz's
# own ("minidocker-source: NAME.dot sha256 ..."), so a test can tell a stale picture from a
# current one without depending on graphviz's version.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
command -v dot >/dev/null || { echo "render.sh: graphviz is missing (apt-get install graphviz)" >&2; exit 1; }
cd "$here"
for source in *.dot; do
    name=${source%.dot}
    sum=$(sha256sum "$source" | cut -d' ' -f1)
    dot -Tsvg "$source" | awk -v stamp="<!-- minidocker-source: $source sha256 $sum -->" \
        'NR == 1 { print; print stamp; next } { print }' > "$out/$name.svg.tmp"
    mv "$out/$name.svg.tmp" "$out/$name.svg"
    echo "rendered $out/$name.svg"
done
