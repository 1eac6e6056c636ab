"""The admin site under `/admin`: served by the `web` process on PORT, or on its own listener
when ADMIN_PORT is set (see the README's "Admin site")."""

from bots.admin.app import AdminSite, build_admin_listener

__all__ = ["AdminSite", "build_admin_listener"]
