/**
 * The gateway's SQLite schema, by version. Each step runs once, in a transaction, and the
 * version is kept in `PRAGMA user_version`.
 *
 * `outbox` holds the accepted messages already encoded as wire messages (JSON text), a few
 * consecutive messages of a group commit per row (`m` of them, `n` readings, comma-joined
 * in `wire`): a batch is built by joining rows, never by re-parsing them. Version 1 had one
 * message per row; its rows read the same with `m` = 1. Version 3 adds `crc`, a checksum of
 * the row (seqs, counts, text) checked at start, because rot inside a row's text passes
 * SQLite's own checks; rows from before it have none and get a JSON check instead. Version 4
 * adds `packed`: a row of a trickle group may be stored deflated (raw DEFLATE of the text,
 * `wire` then empty), since each reading written costs the SD card; its `crc` is of the text.
 * Version 5 changes no table: its rows may hold wire format 2 (each message a JSON array, see
 * shared/src/batch.ts), told apart by their first byte, which a release reading version 4
 * would send as format 1. A release that reads only an earlier version gets the file back
 * through `outbox downgrade`.
 *
 * `auto_vacuum = INCREMENTAL` is not here: SQLite only accepts it before the first table is
 * created, so open.ts sets it on a fresh file before these steps run.
 *
 * `meta` keys: `instance` (random, part of every reading's key), `next_seq`, `inflight`
 * (the id and seq range of the batch being published, so a restart resends exactly it), and
 * `msg_id_key` (random, secret: keys the digest in each batch's `Nats-Msg-Id`).
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
  CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    wire        TEXT    NOT NULL
  ) STRICT;
  CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    payload     BLOB    NOT NULL
  ) STRICT;
  CREATE INDEX quarantine_reason ON quarantine (reason);
  `,
  `
  ALTER TABLE outbox ADD COLUMN m INTEGER NOT NULL DEFAULT 1;
  `,
  `
  ALTER TABLE outbox ADD COLUMN crc INTEGER;
  `,
  `
  ALTER TABLE outbox ADD COLUMN packed BLOB;
  `,
  // Version 5: rows in wire format 2 (nothing to change in the tables).
  "SELECT 1;",
];

/** The outbox format this code writes (its `user_version`); it reads every earlier one too. */
export const OUTBOX_FORMAT = MIGRATIONS.length;
