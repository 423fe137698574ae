"""migrate-bot: start, approve and follow Microsoft 365 cross-tenant migrations from Slack."""

__version__ = "0.1.0"
