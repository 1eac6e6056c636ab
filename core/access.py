"""Who may do what: admins are those the platform reports, plus `ADMIN_USER_IDS`."""

from __future__ import annotations

from collections.abc import Collection

from core.events import User


def is_admin(user: User, admin_ids: Collection[str]) -> bool:
    """Workspace admins (as the platform reports them) and configured admin user ids."""
    return user.is_admin or user.id in admin_ids
