"""pocketscan's messaging client: crypto core, store, network, TUI and CLI."""
