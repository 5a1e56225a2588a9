"""Entry points: the HTTP API, the web console, the CLI and the background job runner. They
translate the outside world into service calls and own transactions (commit/rollback)."""
