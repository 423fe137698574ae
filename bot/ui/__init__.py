"""Every Block Kit builder and every sentence shown to people, one module per surface. Pure functions of data."""
