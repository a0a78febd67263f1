"""Accounts: signing in, who owns what, and what each user may spend."""
