"""The bot token scopes and events the features need: ``manifest.yml`` grants exactly these and ``migrate-bot check``
verifies the scopes (and names the events, which Slack does not report)."""

BOT_SCOPES = (
    "commands",
    "chat:write",
    "usergroups:read",
    "channels:history",
    "groups:history",
    "im:write",
    "im:history",
    "users:read",
)
#: The bot events the app subscribes to (manifest ``settings.event_subscriptions.bot_events``): App Home.
BOT_EVENTS = ("app_home_opened",)
