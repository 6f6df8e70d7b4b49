"""Placeholder: filled in by its implementation."""

__all__: list = []
