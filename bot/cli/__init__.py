"""The ``migrate-bot`` command line: one module per command, each its own composition root built through
:mod:`bot.factories`."""
