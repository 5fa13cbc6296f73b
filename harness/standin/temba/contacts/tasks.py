"""Contact crons (RapidPro temba/contacts/tasks.py): watching the search index fall behind Postgres."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.utils.dateparse import parse_datetime

from temba.contacts.models import Contact
from temba.crons import cron_task

logger = logging.getLogger(__name__)

CONTACTS_INDEX = "contacts"
MAX_LAG = timedelta(minutes=5)
ES_TIMEOUT_SECONDS = 10


@cron_task()
def check_elasticsearch_lag() -> dict[str, Any]:
    """Log an error when the newest indexed contact is more than 5 minutes older than the newest in the DB."""
    # A plain HTTP search: elasticsearch-py 7.13 cannot be imported beside numpy 2.
    response = httpx.post(
        f"{settings.ELASTICSEARCH_URL.rstrip('/')}/{CONTACTS_INDEX}/_search",
        json={"size": 1, "sort": [{"modified_on_mu": "desc"}], "_source": ["modified_on", "id"]},
        timeout=ES_TIMEOUT_SECONDS,
    )
    if response.status_code == httpx.codes.NOT_FOUND:
        return {"lag_seconds": None}  # no index yet: nothing indexed, nothing to compare
    response.raise_for_status()
    hits = response.json()["hits"]["hits"]
    if not hits:
        return {"lag_seconds": None}
    newest_es = hits[0]["_source"]
    es_modified_on = parse_datetime(str(newest_es.get("modified_on")))
    db_contact = Contact.objects.order_by("-modified_on").first()
    if db_contact is None:
        logger.error("db empty but ElasticSearch has contacts. Newest ES(id: %s)", newest_es.get("id"))
        return {"lag_seconds": None}
    if es_modified_on is None:
        logger.error("newest ElasticSearch contact has no parseable modified_on: %r", newest_es)
        return {"lag_seconds": None}
    lag = db_contact.modified_on - es_modified_on
    if lag > MAX_LAG:
        logger.error(
            "drift between ElasticSearch and DB. "
            "Newest DB(id: %d, modified_on: %s) Newest ES(id: %s, modified_on: %s)",
            db_contact.id,
            db_contact.modified_on,
            newest_es.get("id"),
            es_modified_on,
        )
    return {"lag_seconds": lag.total_seconds()}
