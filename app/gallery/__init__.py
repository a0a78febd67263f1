"""The gallery feature."""
