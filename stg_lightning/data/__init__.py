"""Data pipeline: PyAV decoding, captions, `stg prepare` shard writer, streaming DataModule, cached tokens."""
