#!/bin/sh
# Re-render every diagram: diagrams/NAME.dot -> diagrams/NAME.svg (needs graphviz's `dot`,
# which `sudo ./kit setup` installs). Run from anywhere: ./diagrams/render.sh
set -eu
cd "$(dirname "$0")"
command -v dot >/dev/null || { echo "render.sh: graphviz is missing (apt-get install graphviz)" >&2; exit 1; }
for source in *.dot; do
    dot -Tsvg "$source" -o "${source%.dot}.svg"
    echo "rendered ${source%.dot}.svg"
done
