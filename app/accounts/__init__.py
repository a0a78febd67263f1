"""Accounts: signing in, users, invites and admins, API tokens, and who may see what."""
