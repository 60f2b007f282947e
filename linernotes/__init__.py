"""linernotes: album reviews, product reviews and song lyrics from small fine-tuned language models.

Installed, every part lives under this one name: ``linernotes.data``, ``linernotes.model``,
``linernotes.training``, ``linernotes.bot`` (their folders sit at the repository's top level, mapped here by
``pyproject.toml``), ``linernotes.common`` (errors and the config-to-flags machinery every stage shares) and
``linernotes.cli`` (the ``linernotes`` command).
"""
