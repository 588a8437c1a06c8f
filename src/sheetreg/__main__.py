"""``python -m sheetreg``."""

from sheetreg.cli import main

main()
