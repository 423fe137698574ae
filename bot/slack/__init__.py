"""Slack Web API helpers (no Bolt), mrkdwn escaping and the scopes the bot asks for."""
