#!/bin/sh
# sheetreg: käsittele asiakkaiden pyynnöt yhdellä napsautuksella / process client requests in
# one click (macOS and Linux).
#
# Runs `sheetreg requests WORKBOOK --process` on the configured workbook: writes the legal
# deadlines, makes the access extract of every verified Access/Portability request, records it
# in the Outcome cell, and opens the folder with the extracts.
#
# Which workbook / Mikä työkirja (first found wins):
#   1. a workbook given as the first argument (drag the workbook onto the launcher);
#   2. the environment variable SHEETREG_WORKBOOK;
#   3. the first line of workflows/workbook.txt beside this script (lines starting # are skipped).
# Optional: SHEETREG (the sheetreg program; default .venv/bin/sheetreg of this checkout, then
# `sheetreg` on PATH), SHEETREG_EXTRACTS (where extracts go; default extracts/ beside the
# workbook), SHEETREG_NO_OPEN=1 (do not open the folder). Other arguments go to sheetreg as is,
# e.g. --today 2026-11-25 or --lang en. The folder is not opened without a display or under CI.
# Exit code: sheetreg's (0 nothing to act on, 1 something to act on, 2 unusable workbook).
set -u
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
root=$(dirname -- "$here")

workbook=""
if [ $# -gt 0 ] && [ -f "$1" ]; then
  workbook=$1
  shift
elif [ -n "${SHEETREG_WORKBOOK:-}" ]; then
  workbook=$SHEETREG_WORKBOOK
elif [ -f "$here/workbook.txt" ]; then
  workbook=$(grep -v '^[[:space:]]*#' "$here/workbook.txt" | grep -v '^[[:space:]]*$' | head -n 1 | tr -d '\r')
fi
if [ -z "$workbook" ]; then
  echo "sheetreg: työkirjaa ei ole määritetty / no workbook configured." >&2
  echo "  Aseta SHEETREG_WORKBOOK tai kirjoita polku tiedostoon / set SHEETREG_WORKBOOK or write its path in:" >&2
  echo "  $here/workbook.txt" >&2
  exit 2
fi

program=${SHEETREG:-}
if [ -z "$program" ]; then
  if [ -x "$root/.venv/bin/sheetreg" ]; then
    program=$root/.venv/bin/sheetreg
  elif command -v sheetreg >/dev/null 2>&1; then
    program=sheetreg
  else
    echo "sheetreg: ohjelmaa ei löydy / the sheetreg program was not found (set SHEETREG)." >&2
    exit 2
  fi
fi

folder=${SHEETREG_EXTRACTS:-$(dirname -- "$workbook")/extracts}
if [ -n "${SHEETREG_EXTRACTS:-}" ]; then
  "$program" requests "$workbook" --process --out "$folder" "$@"
else
  "$program" requests "$workbook" --process "$@"
fi
status=$?

if [ ! -d "$folder" ]; then
  folder=$(dirname -- "$workbook")
fi
folder=$(CDPATH= cd -- "$folder" && pwd)
echo ""
echo "Otteet / extracts: $folder"
if [ -z "${SHEETREG_NO_OPEN:-}" ] && [ -z "${CI:-}" ]; then
  if [ "$(uname -s)" = "Darwin" ]; then
    open "$folder" >/dev/null 2>&1 || true
  elif [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && command -v xdg-open >/dev/null 2>&1; then
    xdg-open "$folder" >/dev/null 2>&1 &
  fi
fi
# Double-clicked in a terminal window: keep it open until the therapist has read it.
if [ -t 0 ] && [ -t 1 ] && [ -z "${CI:-}" ]; then
  printf "Paina Enter sulkeaksesi / press Enter to close. "
  read -r _ || true
fi
exit $status
