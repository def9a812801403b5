-- Typed readings, one row per value. The key is the gateway's (gateway_id, instance, seq):
-- a redelivered batch hits ON CONFLICT DO NOTHING and changes nothing.
CREATE TABLE IF NOT EXISTS readings (
  gateway_id  text             NOT NULL,
  instance    text             NOT NULL,
  seq         bigint           NOT NULL,
  sensor_id   text             NOT NULL,
  metric      text             NOT NULL,
  ts          timestamptz      NOT NULL,
  value       double precision NOT NULL,
  unit        text,
  received_at timestamptz      NOT NULL,
  source      text             NOT NULL,
  PRIMARY KEY (gateway_id, instance, seq)
);

-- "One sensor over a time range": a B-tree that ends in ts.
CREATE INDEX IF NOT EXISTS readings_sensor_metric_ts ON readings (sensor_id, metric, ts);

-- "All sensors in a time range": rows arrive roughly in time order, so a BRIN index on ts
-- stays a few pages for millions of rows and costs almost nothing on insert, where a
-- second B-tree would double the write cost. See hub/docs/storage.md.
CREATE INDEX IF NOT EXISTS readings_ts_brin ON readings USING brin (ts) WITH (pages_per_range = 32);
