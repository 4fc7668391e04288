"""The one-command demo: an embedded relay, a bank authority with a demo bank and snapshot, a bot."""
