"""``python -m linernotes``: the same as the ``linernotes`` command."""

import sys

from linernotes.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
