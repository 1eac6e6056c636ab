"""Secrets at rest: values sealed with a key derived from `SECRET_KEY` (Fernet).

`SECRET_KEY` is any string of at least `MIN_SECRET_KEY_LENGTH` characters (for example the output
of `python -c "import secrets; print(secrets.token_urlsafe(32))"`). The Fernet key (AES-128-CBC
with an HMAC-SHA256 tag) is derived from it with HKDF-SHA256, so the secret itself never needs a
particular shape. Changing `SECRET_KEY` makes what was sealed with the old one unreadable: the
sealed values (Slack installations) must then be installed again.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_KEY_LENGTH = 32
# HKDF's context: a different purpose would derive a different key from the same secret.
_INFO = b"parley secrets at rest v1"
_SALT = b"parley"


class SealError(Exception):
    """A sealed value cannot be opened: it was sealed with another key, or it was altered."""


def key_problem(secret: str | None) -> str | None:
    """Why `secret` cannot serve as SECRET_KEY (missing, too short), or None."""
    if not secret:
        return "SECRET_KEY is not set"
    if len(secret) < MIN_SECRET_KEY_LENGTH:
        return f"SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters"
    return None


def derive_key(secret: str) -> bytes:
    """The url-safe base64 Fernet key derived from `secret` with HKDF-SHA256."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8")))


class SecretBox:
    """Seals and opens short secrets (tokens) for storage; the sealed form is ASCII text."""

    def __init__(self, secret: str) -> None:
        problem = key_problem(secret)
        if problem is not None:
            raise ValueError(problem)
        self._fernet = Fernet(derive_key(secret))

    def seal(self, value: str) -> str:
        """The value encrypted and authenticated, as text for a TEXT column."""
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        """The value `seal` sealed; `SealError` when the key differs or the text was altered."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise SealError(
                "a stored secret cannot be decrypted with this SECRET_KEY (it was sealed with "
                "another key, or altered)"
            ) from None

    def seal_optional(self, value: str | None) -> str | None:
        """`seal`, passing None through."""
        return None if value is None else self.seal(value)

    def open_optional(self, sealed: str | None) -> str | None:
        """`open`, passing None through."""
        return None if sealed is None else self.open(sealed)
