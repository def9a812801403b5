"""Connections and queries shared by the DataLab notebooks.

Configuration comes from the environment, as for the hub:
  DATALAB_PG_URL     PostgreSQL URL (default postgres://postgres@127.0.0.1:5432/test, the hub's)
  DATALAB_MONGO_URL  MongoDB URL; unset means "no MongoDB": the raw-message parts are skipped
  DATALAB_MONGO_DB   MongoDB database name (default datalab)
Times are timezone-aware UTC pandas timestamps.
"""
import os

import pandas as pd
from sqlalchemy import create_engine, text

# The hub's own default (shared/src/common-config.ts), so both look at the same database.
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/test"


def pg_url():
    url = os.environ.get("DATALAB_PG_URL") or DEFAULT_PG_URL
    # The hub takes postgres:// or postgresql://; SQLAlchemy wants a dialect name.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def engine():
    return create_engine(pg_url(), pool_pre_ping=True)


def query(eng, sql, **params):
    """A SQL query as a DataFrame; timestamptz columns come back as UTC timestamps."""
    with eng.connect() as conn:
        return pd.read_sql_query(text(sql), conn, params=params)


def sensors(eng):
    """One row per sensor: first/last seen, gateway, and its metrics' newest values."""
    df = query(
        eng,
        """SELECT sensor_id, first_seen, last_seen, last_gateway_id AS gateway_id, last_values
             FROM sensors ORDER BY sensor_id""",
    )
    df["metrics"] = df["last_values"].map(lambda v: ", ".join(sorted(v)))
    return df.drop(columns=["last_values"])


def history(eng, sensor, metrics=None, start=None, end=None, limit=2_000_000):
    """Raw readings of one sensor (long format: ts, metric, value, unit), oldest first."""
    df = query(
        eng,
        """SELECT ts, metric, value, unit, gateway_id, instance, seq
             FROM readings
            WHERE sensor_id = :sensor
              AND (CAST(:metrics AS text[]) IS NULL OR metric = ANY(CAST(:metrics AS text[])))
              AND (CAST(:start AS timestamptz) IS NULL OR ts >= CAST(:start AS timestamptz))
              AND (CAST(:end AS timestamptz) IS NULL OR ts < CAST(:end AS timestamptz))
            ORDER BY ts
            LIMIT :limit""",
        sensor=sensor,
        metrics=list(metrics) if metrics is not None else None,
        start=start,
        end=end,
        limit=limit,
    )
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df


def wide(long_df):
    """One column per metric, indexed by time (readings of one message share a timestamp)."""
    return long_df.pivot_table(index="ts", columns="metric", values="value", aggfunc="mean").sort_index()


def buckets(eng, metric, bucket="5 minutes", sensors=None, start=None, end=None):
    """Average per time bucket and sensor, computed by PostgreSQL (date_bin), long format."""
    df = query(
        eng,
        """SELECT sensor_id, date_bin(CAST(:bucket AS interval), ts, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
                  avg(value) AS value, count(*) AS n
             FROM readings
            WHERE metric = :metric
              AND (CAST(:sensors AS text[]) IS NULL OR sensor_id = ANY(CAST(:sensors AS text[])))
              AND (CAST(:start AS timestamptz) IS NULL OR ts >= CAST(:start AS timestamptz))
              AND (CAST(:end AS timestamptz) IS NULL OR ts < CAST(:end AS timestamptz))
            GROUP BY 1, 2
            ORDER BY 1, 2""",
        metric=metric,
        bucket=bucket,
        sensors=list(sensors) if sensors is not None else None,
        start=start,
        end=end,
    )
    df["bucket"] = pd.to_datetime(df["bucket"], utc=True)
    return df


def mongo_db():
    """The MongoDB database holding raw messages, or None when DATALAB_MONGO_URL is unset."""
    url = os.environ.get("DATALAB_MONGO_URL")
    if not url:
        return None
    from pymongo import MongoClient  # only needed when MongoDB is configured

    client = MongoClient(url, serverSelectionTimeoutMS=5000)
    return client[os.environ.get("DATALAB_MONGO_DB") or "datalab"]


# Readings per message the exact-key lookup walks back over before falling back to a range query.
ID_PROBES = 16


def _message_of(db, gateway_id, instance, seq, fields):
    """The message holding reading `seq`, or None.

    Its _id is "<gateway>:<instance>:<firstSeq>" with firstSeq <= seq, so walking back from
    seq the first _id that exists is the only candidate: it holds seq when its lastSeq
    reaches it (a gap otherwise). Lookups by _id are fast on every server (FerretDB 1.x
    serves a range filter by scanning the collection); the range query, which MongoDB answers
    from the hub's gateway_seq index, is the fallback for messages of more readings.
    """
    for first in range(seq, max(0, seq - ID_PROBES), -1):
        doc = db.messages.find_one({"_id": f"{gateway_id}:{instance}:{first}"}, fields)
        if doc is not None:
            return doc if doc.get("lastSeq") is not None and doc["lastSeq"] >= seq else None
    return db.messages.find_one(
        {"gatewayId": gateway_id, "instance": instance, "firstSeq": {"$lte": seq}, "lastSeq": {"$gte": seq}}, fields
    )


def raw_messages(db, rows):
    """The raw message each reading came in, from MongoDB's `messages` collection.

    `rows` needs gateway_id, instance and seq: the reading key. A message holds the readings
    firstSeq..lastSeq of one gateway instance, so the key finds it. A key given twice is
    looked up once; a reading whose message is not in MongoDB is listed with found=False.
    """
    out = []
    fields = {"source": 1, "payload": 1, "firstSeq": 1, "lastSeq": 1}
    keys = rows[["gateway_id", "instance", "seq"]].dropna().drop_duplicates()
    for (gateway_id, instance), group in keys.groupby(["gateway_id", "instance"]):
        for s in sorted({int(s) for s in group.seq}):
            doc = _message_of(db, gateway_id, instance, s, fields)
            out.append(
                {
                    "gateway_id": gateway_id,
                    "seq": s,
                    "found": doc is not None,
                    "source": doc.get("source") if doc else None,
                    "payload": doc.get("payload") if doc else None,
                }
            )
    return pd.DataFrame(out, columns=["gateway_id", "seq", "found", "source", "payload"])
