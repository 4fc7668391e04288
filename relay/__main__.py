"""`python -m relay ...` is `pocketscan relay ...`."""

from __future__ import annotations

import sys

from client.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["relay", *sys.argv[1:]]))
