"""sheetreg: keeps a therapy practice's Excel client register honest under the GDPR."""

from __future__ import annotations

__version__ = "0.1.0"
