"""The admin site's pages, one module per area; each offers `routes(site)`."""
