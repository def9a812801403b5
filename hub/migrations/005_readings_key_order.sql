-- The primary key's columns in the order that compares cheapest: seq, an integer that nearly
-- always differs, before the two text columns, which are equal within a gateway's instance and
-- were compared at every step of every insert. The same key and the same uniqueness; every
-- lookup by it gives all three columns, so no query loses the index. The index is rebuilt once,
-- with writes to readings waiting meanwhile (hub/docs/storage.md).
ALTER TABLE readings
  DROP CONSTRAINT readings_pkey,
  ADD CONSTRAINT readings_pkey PRIMARY KEY (seq, gateway_id, instance);
