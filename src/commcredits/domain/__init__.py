"""The functional core: pure rules about money, tenants, licenses, lots and the ledger.

Nothing in this package performs I/O (no database, network, clock or environment). Every
function takes what it needs as arguments (including ``now``) and returns values or raises a
:class:`~commcredits.domain.errors.DomainError`. It is unit-tested without a database.
"""
