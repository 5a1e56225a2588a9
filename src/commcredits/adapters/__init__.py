"""Adapters: the edges that talk to the outside world (database, payment gateway, SMTP, clock)."""
