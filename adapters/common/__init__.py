"""Pieces every source shares: quarantine for bad input, durable positions."""
