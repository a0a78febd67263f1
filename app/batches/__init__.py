"""The batches feature."""
