"""SQLAlchemy 2 Core storage, the same schema and migrations on SQLite and PostgreSQL."""
