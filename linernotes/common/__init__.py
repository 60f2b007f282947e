"""What every stage shares: the exception hierarchy and the typed-config-to-CLI-flags machinery."""
