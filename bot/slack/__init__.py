"""Slack Web API helpers without Bolt (tell a person, post and find a run's messages, error codes), mrkdwn
escaping, and the scopes the bot asks for."""
