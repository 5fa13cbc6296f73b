"""rp-indexer settings: the real v9 environment names and defaults (plus an optional health port)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from standin.mailroom.envreader import EnvReader


@dataclass(frozen=True)
class IndexerConfig:
    db: str
    elastic_url: str
    poll: float
    contacts_index: str
    contacts_shards: int
    contacts_replicas: int
    batch_size: int
    port: int | None  # stand-in only: a tiny status endpoint
    address: str


def load_config(environ: Mapping[str, str] | None = None) -> IndexerConfig:
    env = EnvReader(environ)
    port = env.integer("INDEXER_PORT", 0, minimum=0)
    return IndexerConfig(
        db=env.text("INDEXER_DB", "postgres://localhost/temba?sslmode=disable"),
        elastic_url=env.text("INDEXER_ELASTIC_URL", "http://localhost:9200"),
        poll=env.seconds("INDEXER_POLL", 5.0),
        contacts_index=env.text("INDEXER_CONTACTS_INDEX", "contacts"),
        contacts_shards=env.integer("INDEXER_CONTACTS_SHARDS", 2, minimum=1),
        contacts_replicas=env.integer("INDEXER_CONTACTS_REPLICAS", 1, minimum=0),
        batch_size=env.integer("INDEXER_BATCH_SIZE", 500, minimum=1),
        port=port or None,
        address=env.text("INDEXER_ADDRESS", "0.0.0.0"),
    )
