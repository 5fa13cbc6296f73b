"""Pieces every stand-in service shares: switches and service settings."""
