"""Text people type and read: what the database can store, words for counts."""
