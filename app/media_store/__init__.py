"""Where image files live: one interface (base.py), a local-disk and an S3 implementation, chosen by MEDIA_STORAGE."""
