"""Stand-in for rp-archiver v9: old messages to S3 as gzipped JSON lines, deletion only if configured."""
