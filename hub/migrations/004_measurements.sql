-- One row per measurement (docs/radios.md, "One row per measurement"). The reading key
-- (gateway_id, instance, seq) makes a redelivery harmless; the measurement key makes a second
-- gateway's copy, or a radio's repeat, harmless too.
--
-- sensor_time is true when ts is the sensor's own time: sensor, metric and ts then identify
-- the measurement, and this unique index refuses a second row for it with the same value (the sink's ON CONFLICT
-- DO NOTHING folds it). It is NULL when the gateway stamped ts on receipt: NULLs are distinct
-- in a unique index, so such rows never collide here; the sink folds them by their format's
-- window instead. Rows written before this migration are NULL: left as they were.
--
-- The unique index takes the place (and the name) of the B-tree on (sensor_id, metric, ts) and
-- serves the same queries, since it starts with those columns: a reading still costs one
-- B-tree entry beside the primary key.
ALTER TABLE readings ADD COLUMN IF NOT EXISTS sensor_time boolean;
DROP INDEX IF EXISTS readings_sensor_metric_ts;
-- The value is part of the key: copies that agree fold, a copy that disagrees (a forged or
-- damaged one from another gateway) is kept beside it and can never replace a reading.
CREATE UNIQUE INDEX readings_sensor_metric_ts ON readings (sensor_id, metric, ts, sensor_time, value);

-- The key of each gateway reading folded into a measurement stored by another reading (another
-- gateway's copy, a radio's repeat): what makes the per-gateway fold count exact, since a
-- redelivered batch finds its folds recorded and does not count them again. Only folds
-- write here; a gateway alone in range of its sensors adds nothing.
CREATE TABLE IF NOT EXISTS readings_folded (
  gateway_id text   NOT NULL,
  instance   text   NOT NULL,
  seq        bigint NOT NULL,
  PRIMARY KEY (gateway_id, instance, seq)
);
