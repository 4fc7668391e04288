"""`pocketscan` subcommands contributed by the scanner package (cheap to import)."""
