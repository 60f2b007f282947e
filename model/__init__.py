"""Checkpoints and generation: the card, save/load, batched decoding, the generator and its worker."""
