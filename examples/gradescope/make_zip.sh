#!/usr/bin/env bash
# Build autograder.zip for Gradescope: setup.sh, run_autograder, the client and config.json at the root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$here/config.json" ] || { echo "copy config.json.example to config.json and fill it in" >&2; exit 1; }
tmp=$(mktemp -d)
cp "$here/setup.sh" "$here/run_autograder" "$here/config.json" "$tmp/"
cp -R "$here/../client/gradstab_client" "$tmp/"
rm -rf "$tmp/gradstab_client/__pycache__"
(cd "$tmp" && zip -q -r "$here/autograder.zip" .)
rm -rf "$tmp"
echo "wrote $here/autograder.zip"
