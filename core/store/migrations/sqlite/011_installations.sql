-- Apps installed into workspaces through OAuth (Slack's multi-workspace install): one row per
-- workspace, or per Enterprise Grid organization for an org-wide install (team_id ''). Token
-- columns hold values sealed with SECRET_KEY (core/crypto.py), never the tokens themselves.

CREATE TABLE installations (
    platform                TEXT    NOT NULL,
    enterprise_id           TEXT    NOT NULL DEFAULT '',
    team_id                 TEXT    NOT NULL DEFAULT '',
    org_wide                INTEGER NOT NULL DEFAULT 0,
    app_id                  TEXT,
    enterprise_name         TEXT,
    enterprise_url          TEXT,
    team_name               TEXT,
    bot_id                  TEXT,
    bot_user_id             TEXT,
    bot_scopes              TEXT,
    bot_token               TEXT,
    bot_refresh_token       TEXT,
    bot_token_expires_at    BIGINT,
    installer_user_id       TEXT,
    user_scopes             TEXT,
    user_token              TEXT,
    user_refresh_token      TEXT,
    user_token_expires_at   BIGINT,
    token_type              TEXT,
    installed_at            REAL NOT NULL,
    updated_at              REAL NOT NULL,
    revoked_at              REAL,
    revoked_reason          TEXT,
    -- A token refresh in progress: until when, and by which process (so only one refreshes).
    refresh_claimed_until   REAL,
    refresh_claimed_by      TEXT,
    PRIMARY KEY (platform, enterprise_id, team_id)
) WITHOUT ROWID;

-- The organization of each workspace seen under an org-wide install, so a reply after a restart
-- (which knows only the workspace) finds the organization's installation.
CREATE TABLE installation_teams (
    platform      TEXT NOT NULL,
    team_id       TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    PRIMARY KEY (platform, team_id)
) WITHOUT ROWID;

-- OAuth state values issued by the install page, each good for one redirect before it expires.
CREATE TABLE oauth_states (
    state      TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
