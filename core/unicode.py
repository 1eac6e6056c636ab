"""Text that every backend can store and every API can encode: the one cleaning rule.

A Python `str` may hold what UTF-8 cannot encode (lone surrogates, e.g. from a JSON `"\\ud800"`
escape) and NUL, which PostgreSQL's `text` cannot hold (SQLite can). Such text is cleaned once,
where it enters (an `Event`, a store write), the same way everywhere:

- a surrogate pair held as two code points becomes the character it encodes;
- every other (lone) surrogate becomes U+FFFD REPLACEMENT CHARACTER, one per code point;
- NUL becomes U+FFFD too (replaced, not removed: the text keeps its length and shows where
  something was).

Everything else is kept as it is: emoji and their modifiers, RTL and other format marks,
combining characters, control characters other than NUL.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """`text` with lone surrogates and NUL replaced by U+FFFD (the same object when clean).

    Clean text costs a scan for NUL and one for non-ASCII (plus a UTF-8 encode when there is
    some); only text that needs it is copied.
    """
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    elif text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 pairs up surrogates; the decoder replaces each one left unpaired.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text
