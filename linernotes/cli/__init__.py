"""The ``linernotes`` command line: thin subcommands over the four packages."""
