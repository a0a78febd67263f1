"""The pixel work: decoding and checking what the API sent, thumbnails, metadata in the file."""
