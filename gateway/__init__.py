"""Vigie gateway."""
