"""charging_load and charging_write: a charging batch's reads and writes, one call each (PostgreSQL)

The charging engine decides many requests in one transaction. ``charging_load`` locks what
they touch and reads it, ``charging_write`` stores every row they changed; each is one
statement from the service, so a batch costs two round trips whatever its size, and the rows
cross as one JSON document each way (cheap to build and parse on both sides).

Lock order: the wallets (tenant id order), then the calls (call id order), then the pool
counters; the read comes after the locks, in a statement of its own (a new snapshot under
READ COMMITTED: nothing is read as it was before a lock wait). A wallet another batch holds
is skipped (``SKIP LOCKED``) unless the batch must wait for it (``p_wait``): the load says
which tenants and calls it left out, and their requests go to the engine's next batch, which
waits for them. So two engines (two workers, two instances) work on different tenants side
by side instead of in turn, and a request is put off at most once.

Both run with ``plan_cache_mode = force_generic_plan`` and ``enable_seqscan = off``: each
statement is planned once per connection (custom plans for array parameters were made
again on every call: planning cost more than running), and every row they touch is found
by an index (a plan made while a table is still nearly empty would otherwise keep a
sequential scan, reading the whole table on every batch as it grows).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""
from __future__ import annotations

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_LOAD = """
CREATE FUNCTION charging_load(p_keys text[], p_tenants text[], p_calls text[],
                              p_user_tenants text[], p_user_upns text[], p_messages text[],
                              p_months text[], p_wait text[]) RETURNS json
AS $$
DECLARE
  named text[];
  t text[];
  m text[];
  loaded json;
BEGIN
  SELECT coalesce(array_agg(x ORDER BY x), '{}') INTO named FROM (
    SELECT unnest(p_tenants) UNION SELECT tenant_id FROM calls WHERE call_id = ANY(p_calls)) s(x);
  -- the wallets this batch must have, waited for in tenant order; then, of the others, those
  -- no other batch holds now (their requests wait for this engine's next batch instead)
  -- (p_wait NULL: wait for every one)
  PERFORM 1 FROM wallets WHERE tenant_id = ANY(named)
    AND (p_wait IS NULL OR tenant_id = ANY(p_wait)) ORDER BY tenant_id FOR UPDATE;
  SELECT coalesce(array_agg(tenant_id), '{}') INTO t FROM (
    SELECT tenant_id FROM wallets WHERE tenant_id = ANY(named)
       AND p_wait IS NOT NULL AND NOT tenant_id = ANY(p_wait)
     ORDER BY tenant_id FOR UPDATE SKIP LOCKED) s;
  t := t || ARRAY(SELECT tenant_id FROM wallets WHERE tenant_id = ANY(named)
                     AND (p_wait IS NULL OR tenant_id = ANY(p_wait)));
  SELECT coalesce(array_agg(x), '{}') INTO m FROM (
    SELECT unnest(p_months) UNION
    SELECT pool_month FROM calls WHERE call_id = ANY(p_calls) AND pool_month IS NOT NULL) s(x);
  PERFORM 1 FROM calls WHERE call_id = ANY(p_calls) AND tenant_id = ANY(t)
    ORDER BY call_id FOR UPDATE;
  PERFORM 1 FROM pool_usage WHERE tenant_id = ANY(t) AND month = ANY(m)
    ORDER BY tenant_id, month, pool FOR UPDATE;
  SELECT json_build_object(
    'keys', (SELECT json_agg(k) FROM (
       SELECT id, key_hash, role, tenant_id, revoked_at, last_used_at FROM api_keys
        WHERE key_hash = ANY(p_keys)) k),
    'wallets', (SELECT json_agg(w) FROM wallets w WHERE w.tenant_id = ANY(t)),
    'calls', (SELECT json_agg(c) FROM calls c
               WHERE c.call_id = ANY(p_calls) AND c.tenant_id = ANY(t)),
    'deferred', (SELECT json_agg(w.tenant_id) FROM wallets w
                  WHERE w.tenant_id = ANY(named) AND NOT w.tenant_id = ANY(t)),
    'deferred_calls', (SELECT json_agg(json_build_array(c.call_id, c.tenant_id)) FROM calls c
                        WHERE c.call_id = ANY(p_calls) AND NOT c.tenant_id = ANY(t)),
    'lots', (SELECT json_agg(l ORDER BY l.tenant_id, l.purchased_at, l.seq) FROM (
       SELECT tenant_id, id, seq, amount, remaining, purchased_at, expires_at, source FROM lots
        WHERE tenant_id = ANY(t)) l),
    'tenants', (SELECT json_agg(x) FROM (
       SELECT tn.*, (SELECT d.version FROM rate_decks d WHERE d.currency = tn.currency)
              AS deck_version
         FROM tenants tn WHERE tn.id = ANY(t)) x),
    'users', (SELECT json_agg(x) FROM (
       SELECT u.id, u.tenant_id, u.upn, u.display_name, u.usage_location, u.phone_number,
              la.sku
         FROM (SELECT u.tenant_id, u.id FROM unnest(p_user_tenants, p_user_upns)
                        AS q(tenant_id, upn)
                 JOIN users u ON u.tenant_id = q.tenant_id AND lower(u.upn) = q.upn
               UNION
               SELECT c.tenant_id, c.user_id FROM calls c
                WHERE c.call_id = ANY(p_calls) AND c.user_id IS NOT NULL
                  AND c.tenant_id = ANY(t)) k
         JOIN users u ON u.id = k.id AND u.tenant_id = k.tenant_id
         LEFT JOIN license_assignments la ON la.user_id = u.id AND la.tenant_id = u.tenant_id
       ) x),
    'messages', (SELECT json_agg(x) FROM (
       SELECT message_id, tenant_id, result, created_at FROM messages
        WHERE message_id = ANY(p_messages)) x),
    'pools', (SELECT json_agg(p) FROM pool_usage p
               WHERE p.tenant_id = ANY(t) AND p.month = ANY(m)),
    'pool_scope', (SELECT json_agg(json_build_array(tt, mm)) FROM unnest(t) tt, unnest(m) mm)
  ) INTO loaded;
  RETURN loaded;
END $$ LANGUAGE plpgsql
  SET enable_seqscan = off SET plan_cache_mode = force_generic_plan"""

_WRITE = """
CREATE FUNCTION charging_write(p_new_calls json, p_changed_calls json, p_transactions json,
                               p_postings json, p_usage json, p_lots json, p_wallets json,
                               p_pools json, p_messages json, p_key_uses json) RETURNS void
AS $$
BEGIN
  IF p_new_calls IS NOT NULL THEN
    INSERT INTO calls SELECT * FROM json_populate_recordset(NULL::calls, p_new_calls);
  END IF;
  IF p_changed_calls IS NOT NULL THEN
    UPDATE calls c SET call_type = v.call_type, from_number = v.from_number,
           to_number = v.to_number, user_id = v.user_id, conference_id = v.conference_id,
           decision = v.decision, reason = v.reason, route = v.route, pool = v.pool,
           pool_month = v.pool_month, pool_s = v.pool_s, credit_s = v.credit_s,
           credit_reserved = v.credit_reserved, with_fee = v.with_fee, tail = v.tail,
           status = v.status, started_at = v.started_at, last_seen_at = v.last_seen_at,
           elapsed_s = v.elapsed_s, ended_at = v.ended_at, result = v.result,
           answered_at = v.answered_at, final = v.final, cut_reason = v.cut_reason,
           settled_by = v.settled_by
      FROM json_populate_recordset(NULL::calls, p_changed_calls) v
     WHERE c.call_id = v.call_id AND c.tenant_id = v.tenant_id;
  END IF;
  IF p_transactions IS NOT NULL THEN
    INSERT INTO ledger_transactions
      SELECT * FROM json_populate_recordset(NULL::ledger_transactions, p_transactions);
  END IF;
  IF p_postings IS NOT NULL THEN
    INSERT INTO ledger_postings (transaction_id, tenant_id, debit_account, credit_account,
                                 amount)
      SELECT transaction_id, tenant_id, debit_account, credit_account, amount
        FROM json_populate_recordset(NULL::ledger_postings, p_postings);
  END IF;
  IF p_usage IS NOT NULL THEN
    INSERT INTO usage_records SELECT * FROM json_populate_recordset(NULL::usage_records, p_usage);
  END IF;
  IF p_lots IS NOT NULL THEN
    UPDATE lots l SET remaining = v.remaining
      FROM json_populate_recordset(NULL::lots, p_lots) v
     WHERE l.id = v.id AND l.tenant_id = v.tenant_id;
  END IF;
  IF p_wallets IS NOT NULL THEN
    UPDATE wallets w SET balance = v.balance, reserved = v.reserved, lot_seq = v.lot_seq,
           txn_seq = v.txn_seq, ar_enabled = v.ar_enabled,
           ar_recharge_amount = v.ar_recharge_amount, ar_trigger_amount = v.ar_trigger_amount,
           ar_payment_method_id = v.ar_payment_method_id, ar_status = v.ar_status,
           ar_armed = v.ar_armed, zero_notified = v.zero_notified
      FROM json_populate_recordset(NULL::wallets, p_wallets) v
     WHERE w.tenant_id = v.tenant_id;
  END IF;
  IF p_pools IS NOT NULL THEN
    INSERT INTO pool_usage SELECT * FROM json_populate_recordset(NULL::pool_usage, p_pools)
      ON CONFLICT (tenant_id, month, pool) DO UPDATE
      SET used_minutes = EXCLUDED.used_minutes, reserved_s = EXCLUDED.reserved_s,
          alerted = EXCLUDED.alerted;
  END IF;
  IF p_messages IS NOT NULL THEN
    INSERT INTO messages (message_id, tenant_id, result, created_at)
      SELECT message_id, tenant_id, result, created_at
        FROM json_populate_recordset(NULL::messages, p_messages);
  END IF;
  IF p_key_uses IS NOT NULL THEN
    UPDATE api_keys k SET last_used_at = v.at
      FROM json_to_recordset(p_key_uses) AS v(id text, at timestamp, stale_before timestamp)
     WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.stale_before);
  END IF;
END $$ LANGUAGE plpgsql
  SET enable_seqscan = off SET plan_cache_mode = force_generic_plan"""


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_LOAD)
        op.execute(_WRITE)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION charging_write(json, json, json, json, json, json, json, "
                   "json, json, json)")
        op.execute("DROP FUNCTION charging_load(text[], text[], text[], text[], text[], "
                   "text[], text[], text[])")
