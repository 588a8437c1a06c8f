#!/bin/sh
# Sets up and runs the whole test suite on a fresh machine with Python 3.11:
# Debian's LibreOffice (the tests open real files with it) and Chromium (the hygiene report is
# rendered headless), a virtual environment, pytest.
set -eu
cd "$(dirname "$0")/.."
need=""
command -v soffice >/dev/null 2>&1 || need="$need libreoffice-calc-nogui"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $need
fi
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest "$@"
