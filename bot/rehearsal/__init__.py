"""Rehearsal worlds: the Graph simulator, the Slack stand-in, the sandbox that wires them to the bot, and the demo."""
