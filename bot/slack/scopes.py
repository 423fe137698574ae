"""The bot token scopes the features need: ``manifest.yml`` grants exactly these and ``migrate-bot check`` verifies."""

BOT_SCOPES = ("commands", "chat:write", "usergroups:read", "channels:history", "groups:history", "users:read")
