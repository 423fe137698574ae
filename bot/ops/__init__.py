"""Operating the bot: start-up checks, metrics, structured logs."""
