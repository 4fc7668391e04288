"""The Textual front end (``pocketscan chat`` / ``pocketscan demo``); imports the core, never the reverse."""
