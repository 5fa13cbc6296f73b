"""Stand-in for rp-indexer v9: contacts from Postgres into the search node's `contacts` alias."""
