"""Keeping the good ones: stars and ratings, collections, and the share links that show them signed out."""
