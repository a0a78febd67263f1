"""The prompts feature."""
