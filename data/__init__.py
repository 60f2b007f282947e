"""Corpora in, tagged training examples out: the tag format, readers, cleaning, splits."""
