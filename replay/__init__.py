"""The time machine: manifested Parquet snapshots, materialize at any event, diff, bisect."""
