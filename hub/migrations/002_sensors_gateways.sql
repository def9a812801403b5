-- What the hub knows about each sensor and each gateway, kept current in the same
-- transaction as the readings insert (one upsert per table per batch, see sinks/postgres.ts).
-- Every update is a merge that does not depend on arrival order (LEAST/GREATEST, newest
-- wins), so a redelivered or out-of-order batch leaves the same rows behind.

-- One row per sensor id. A sensor is keyed by its id alone, not by gateway: two gateways
-- in radio range of the same 433 MHz sensor hear the same sensor.
CREATE TABLE IF NOT EXISTS sensors (
  sensor_id       text        PRIMARY KEY,
  -- Receive times (gateway clock) of the earliest and latest readings the hub stored.
  first_seen      timestamptz NOT NULL,
  last_seen       timestamptz NOT NULL,
  -- The gateway that delivered the latest reading.
  last_gateway_id text        NOT NULL,
  -- Newest value per metric: {"temperature": {"value": 21.3, "unit": "Cel", "ts": <epoch ms>, "seq": n}, ...}
  last_values     jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX IF NOT EXISTS sensors_last_seen ON sensors (last_seen);

-- One row per gateway.
CREATE TABLE IF NOT EXISTS gateways (
  gateway_id          text        PRIMARY KEY,
  -- Hub clock: when the hub first and last committed a batch of this gateway.
  first_batch_at      timestamptz NOT NULL,
  last_batch_at       timestamptz NOT NULL,
  -- The newest batch (by the gateway's own sentAt, then seq): which instance, which seqs, how big.
  last_batch_sent_at  timestamptz NOT NULL,
  last_instance       text        NOT NULL,
  last_batch_first_seq bigint     NOT NULL,
  last_batch_seq      bigint      NOT NULL,
  last_batch_readings integer     NOT NULL,
  last_batch_messages integer     NOT NULL,
  last_batch_bytes    integer     NOT NULL,
  -- Reported by the gateway itself (outbox backlog, health) once it sends such reports;
  -- NULL until then.
  backlog_readings    bigint,
  backlog_bytes       bigint,
  oldest_backlog_at   timestamptz,
  health              text,
  health_detail       jsonb,
  reported_at         timestamptz
);
