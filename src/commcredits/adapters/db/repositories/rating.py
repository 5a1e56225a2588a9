"""Rate decks: stored as rows, served from an in-process cache keyed by the deck's version,
so a lookup costs one tiny version query plus a hash-map walk, whatever the deck's size."""

from __future__ import annotations

import threading
from datetime import datetime

import sqlalchemy as sa

from commcredits.adapters.db.schema import rate_decks, rate_rows
from commcredits.domain.rating import Rate, RateDeck

CHUNK = 5000


class DeckCache:
    def __init__(self) -> None:
        self._decks: dict[str, tuple[int, RateDeck]] = {}
        self._lock = threading.Lock()

    def get(self, currency: str, version: int) -> RateDeck | None:
        found = self._decks.get(currency)
        return found[1] if found and found[0] == version else None

    def put(self, currency: str, version: int, deck: RateDeck) -> None:
        with self._lock:
            self._decks[currency] = (version, deck)


class RateRepo:
    def __init__(self, conn: sa.Connection, cache: DeckCache) -> None:
        self.conn = conn
        self.cache = cache

    def version(self, currency: str) -> int | None:
        return self.conn.scalar(sa.select(rate_decks.c.version)
                                .where(rate_decks.c.currency == currency))

    def deck(self, currency: str) -> RateDeck | None:
        return self.deck_at(currency, self.version(currency))

    def deck_at(self, currency: str, version: int | None) -> RateDeck | None:
        """The deck at ``version`` (just read by the caller in its transaction; None: no
        deck): from the cache when it holds that version, else loaded and cached."""
        if version is None:
            return None
        cached = self.cache.get(currency, version)
        if cached is not None:
            return cached
        rows = self.conn.execute(sa.select(rate_rows).where(rate_rows.c.currency == currency))
        deck = RateDeck(currency, (Rate(r.prefix, r.destination, r.number_type, r.per_minute,
                                        r.connection_fee, r.increment_s) for r in rows))
        self.cache.put(currency, version, deck)
        return deck

    def replace(self, currency: str, rates: list[Rate], now: datetime) -> int:
        """Swap the whole deck in this transaction; returns the new version."""
        version = (self.version(currency) or 0) + 1
        self.conn.execute(sa.delete(rate_rows).where(rate_rows.c.currency == currency))
        for start in range(0, len(rates), CHUNK):
            self.conn.execute(sa.insert(rate_rows), [
                {"currency": currency, "prefix": r.prefix, "number_type": r.number_type,
                 "destination": r.destination, "per_minute": r.per_minute,
                 "connection_fee": r.connection_fee, "increment_s": r.increment_s}
                for r in rates[start:start + CHUNK]])
        self.conn.execute(sa.delete(rate_decks).where(rate_decks.c.currency == currency))
        self.conn.execute(sa.insert(rate_decks).values(currency=currency, version=version,
                                                       rows=len(rates), imported_at=now))
        return version
