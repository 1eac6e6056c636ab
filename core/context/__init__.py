"""The platform's own context: channel and thread history through each adapter's port, with the
permission rules, as tools (`read_thread`, `read_channel`), `/summarize`, and the earlier
messages of a thread the bot is mentioned into."""
