"""The feature store: feature views over ingested CSV/Parquet data, point-in-time correct training
sets, an online store that enforces each view's TTL when read, and serving by entity key.

Feast is the anchor for the semantics, not a dependency (see the README, "Feature store: why our
own"). Everything lives in the project's store: SQLite embedded, PostgreSQL at scale.

- ``definitions``: names, types, view definitions, feature references
- ``tables``: each version's offline and online tables (created at registration)
- ``sources``: reading and checking a source file (types, keys, timestamps as UTC microseconds)
- ``catalog``: registering, listing and describing views and their versions
- ``ingest`` / ``materialize``: appending files; loading the online table from a watermark
- ``pit``: the point-in-time join (SQL on both backends; LATERAL on PostgreSQL)
- ``online``: reading the online table with statuses (the TTL enforced at read time)
- ``training``: build_training_set and the lineage it writes into the Parquet file
- ``serving``: predict by entity key, through the same column assembly as training
"""
