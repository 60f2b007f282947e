"""Measured quality: likelihood, condition adherence, copying, diversity and human ratings."""
