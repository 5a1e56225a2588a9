"""Repositories: translate between rows and domain objects. No business rules here."""
