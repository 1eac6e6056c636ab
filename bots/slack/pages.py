"""The HTML pages of the install flow: "Add to Slack" (and Discord), success, and each failure."""

from __future__ import annotations

from html import escape

# Bolt's failure reasons (and Slack's `error` query values) -> what the installer is told.
FAILURES = {
    "access_denied": (
        "Installation cancelled",
        "The app was not installed: the request was denied in Slack. Nothing was changed. "
        "To try again, start from the install page.",
    ),
    "invalid_browser": (
        "Start from the install page",
        "This link did not come from an install page opened in this browser (its cookie is "
        "missing). Open the install page and choose Add to Slack from there.",
    ),
    "invalid_state": (
        "This install link has expired",
        "The link was already used, has expired, or was not issued by this server. Nothing "
        "was installed. Open the install page again for a fresh link.",
    ),
    "missing_code": (
        "Slack did not complete the installation",
        "The redirect from Slack carried no authorization code. Nothing was installed. Start "
        "again from the install page.",
    ),
    "invalid_code": (
        "Slack refused the installation",
        "Exchanging the authorization code with Slack failed (an expired or used code, or "
        "SLACK_CLIENT_ID / SLACK_CLIENT_SECRET do not match the app). Nothing was installed; "
        "the server log says why.",
    ),
    "storage_error": (
        "The installation could not be saved",
        "Slack approved the installation but the server could not store it. Nothing was "
        "installed; try again in a minute.",
    ),
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;"
    "line-height:1.5;color:#1d1c1d}a.button{display:inline-block;padding:.6em 1.2em;"
    "border-radius:6px;background:#4a154b;color:#fff;text-decoration:none;margin:.3em 0}"
    "a.discord{background:#5865f2}"
)


def page(title: str, *paragraphs: str, links: tuple[tuple[str, str, str], ...] = ()) -> str:
    """A small self-contained page; `paragraphs` are text (escaped), `links` are
    (label, url, css class) buttons."""
    body = "".join(f"<p>{escape(text)}</p>" for text in paragraphs)
    buttons = "".join(
        f'<p><a class="button {escape(css)}" href="{escape(url)}">{escape(label)}</a></p>'
        for label, url, css in links
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{escape(title)}</title><style>{_STYLE}</style>'
        f"</head><body><h1>{escape(title)}</h1>{body}{buttons}</body></html>"
    )


def install_page(slack_url: str | None, discord_url: str | None) -> str:
    """The page at GET /slack/install: Add to Slack, and Add to Discord when it is configured."""
    links = []
    if slack_url:
        links.append(("Add to Slack", slack_url, "slack"))
    if discord_url:
        links.append(("Add to Discord", discord_url, "discord"))
    text = "Add the assistant to your Slack workspace"
    text += " or your Discord server." if discord_url else "."
    return page("Install Parley", text, links=tuple(links))


def installed_page(team: str | None, *, org_wide: bool) -> str:
    """The page after a successful install."""
    where = "your organization" if org_wide else (team or "your workspace")
    return page(
        "Parley is installed",
        f"The app is installed in {where}.",
        "Invite it to a channel with /invite @parley and mention it, or send it a direct "
        "message. You can close this page.",
    )


def failure_page(reason: str) -> str:
    """The page for a failed install, by Bolt's reason (or Slack's error)."""
    title, text = FAILURES.get(
        reason,
        (
            "The installation did not complete",
            f"Slack answered {reason!r}. Nothing was installed; start again from the install page.",
        ),
    )
    return page(title, text)
