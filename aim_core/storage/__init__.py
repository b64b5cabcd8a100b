"""On-disk storage: sqlitedict files, point chunks, run locks, the catalog and the flusher."""
