#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image. The client is standard-library
# Python, so python3 is all the image needs; the rubric stays on the grading service.
set -euo pipefail
if ! command -v python3 >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3
fi
