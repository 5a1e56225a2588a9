"""Use cases. Each function opens nothing itself: it gets a unit of work, loads what it needs
through the repositories, asks the domain what to do, and writes the outcome. Entry points
(HTTP, CLI, jobs) commit."""
