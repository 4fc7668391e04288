"""The `pocketscan` command line: one console script, subcommands registered per package."""
