"""The media feature."""
