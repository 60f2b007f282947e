"""The cache on the web: a read-only site and JSON API with permalinks, beside the bot.

``linernotes web`` serves it on its own; the bot mounts the same app on its event loop when ``web_port``
is set. Nothing here generates: the site serves what the bot stored, under the privacy rules of
``privacy.py``. Importing this package loads nothing of aiohttp (``app.py`` does, when a site starts).
"""
