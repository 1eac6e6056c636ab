"""Free text as the store writes it: the same on SQLite and PostgreSQL.

`storable` is `core.unicode.clean_text` (lone surrogates and NUL become U+FFFD, everything else
is kept): SQLite cannot take a lone surrogate, PostgreSQL's `text` cannot take NUL. Every store
function that writes user- or model-provided text passes it through `storable` first.
"""

from __future__ import annotations

from core.unicode import REPLACEMENT, clean_text

storable = clean_text

__all__ = ["REPLACEMENT", "storable"]
