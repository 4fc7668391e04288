"""Widgets of the chat screen, one area per module."""
