"""Daily message archives: build, upload to S3, record, and (only if configured) delete the rows.

As rp-archiver v9 for messages: one archive per org and UTC day that ended before now − retention,
written as gzipped JSON lines to `<org_id>/message_D<YYYYMMDD>_<md5>.jsonl.gz`, recorded in
`archives_archive` with `needs_deletion`, and deleted from `msgs_msg` only when ARCHIVER_DELETE is on,
after checking that the S3 object still has the archive's hash and that the day holds no more messages
than were archived. Monthly rollups and run archives are not reproduced.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from standin.archiver.config import ArchiverConfig

log = logging.getLogger("archiver")

ARCHIVE_TYPE = "message"
DAY_PERIOD = "D"
DELETE_BATCH = 100

# The web stand-in has no archives app: the archiver brings the table RapidPro's archives app defines.
ARCHIVES_TABLE = """
CREATE TABLE IF NOT EXISTS archives_archive (
    id serial PRIMARY KEY,
    archive_type varchar(16) NOT NULL,
    org_id integer NOT NULL,
    created_on timestamptz NOT NULL DEFAULT now(),
    start_date date NOT NULL,
    period varchar(1) NOT NULL,
    record_count integer NOT NULL,
    size bigint NOT NULL,
    hash text NOT NULL,
    url text NOT NULL,
    needs_deletion boolean NOT NULL DEFAULT false,
    build_time integer NOT NULL,
    rollup_id integer NULL,
    deleted_on timestamptz NULL,
    UNIQUE (org_id, archive_type, start_date, period)
)
"""

_SELECT_MESSAGES = """
SELECT row_to_json(rec)::text FROM (
    SELECT m.id,
           row_to_json(contact) AS contact,
           u.identity AS urn,
           row_to_json(channel) AS channel,
           row_to_json(flow) AS flow,
           CASE WHEN m.direction = 'I' THEN 'in' WHEN m.direction = 'O' THEN 'out' END AS direction,
           CASE WHEN m.msg_type = 'T' THEN 'text' WHEN m.msg_type = 'O' THEN 'optin'
                WHEN m.msg_type = 'V' THEN 'voice' END AS "type",
           CASE m.status WHEN 'I' THEN 'initializing' WHEN 'P' THEN 'queued' WHEN 'Q' THEN 'queued'
                WHEN 'W' THEN 'wired' WHEN 'D' THEN 'delivered' WHEN 'H' THEN 'handled'
                WHEN 'E' THEN 'errored' WHEN 'F' THEN 'failed' WHEN 'S' THEN 'sent' END AS status,
           CASE m.visibility WHEN 'V' THEN 'visible' WHEN 'A' THEN 'archived' ELSE 'deleted' END AS visibility,
           m.text,
           '[]'::json AS attachments,
           '[]'::json AS labels,
           m.created_on,
           m.sent_on,
           m.modified_on
      FROM msgs_msg m
      JOIN LATERAL (SELECT uuid, name FROM contacts_contact c WHERE c.id = m.contact_id) AS contact ON true
      LEFT JOIN contacts_contacturn u ON u.id = m.contact_urn_id
      LEFT JOIN LATERAL (SELECT uuid, name FROM channels_channel ch WHERE ch.id = m.channel_id) AS channel ON true
      LEFT JOIN LATERAL (SELECT uuid, name FROM flows_flow f WHERE f.id = m.flow_id) AS flow ON true
     WHERE m.org_id = %s AND m.created_on >= %s AND m.created_on < %s AND m.visibility NOT IN ('D', 'X')
  ORDER BY m.created_on ASC, m.id ASC
) rec
"""


@dataclass
class Archive:
    org_id: int
    start_date: date
    record_count: int = 0
    size: int = 0
    hash: str = ""
    url: str = ""
    build_time_ms: int = 0
    body: bytes = b""

    @property
    def start(self) -> datetime:
        return datetime(self.start_date.year, self.start_date.month, self.start_date.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=1)

    @property
    def key(self) -> str:
        return f"{self.org_id}/{ARCHIVE_TYPE}_{DAY_PERIOD}{self.start_date:%Y%m%d}_{self.hash}.jsonl.gz"


class S3Store:
    """The bucket, through boto3 (blocking calls run in a thread)."""

    def __init__(self, config: ArchiverConfig) -> None:
        import boto3  # deferred: boto3 is slow to import and only needed once an archive is built

        self.bucket = config.s3_bucket
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=config.s3_endpoint,
            region_name=config.aws_region,
            aws_access_key_id=config.aws_access_key_id or None,
            aws_secret_access_key=config.aws_secret_access_key or None,
        )

    def ensure_bucket(self, create: bool) -> None:
        """Real rp-archiver stops at start when its bucket is unreachable; the stand-in may create it."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except Exception as exc:
            if not create:
                raise RuntimeError(f"s3 bucket {self.bucket!r} not reachable: {exc}") from None
        self._client.create_bucket(Bucket=self.bucket)
        log.info("created s3 bucket %s", self.bucket)

    async def put(self, archive: Archive) -> None:
        md5 = base64.b64encode(bytes.fromhex(archive.hash)).decode()
        await asyncio.to_thread(
            self._client.put_object,
            Bucket=self.bucket,
            Key=archive.key,
            Body=archive.body,
            ContentType="application/json",
            ContentEncoding="gzip",
            ContentMD5=md5,
        )

    async def etag(self, key: str) -> str | None:
        try:
            head = await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=key)
        except Exception:  # missing object or unreachable store: cannot vouch for it
            return None
        return str(head.get("ETag", "")).strip('"')


def day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


class MessageArchiver:
    def __init__(self, config: ArchiverConfig, store: S3Store) -> None:
        self.config = config
        self.store = store

    async def run(self, now: datetime | None = None) -> dict[str, int]:
        """Archive every active org once; returns counts for the log."""
        now = now or datetime.now(UTC)
        totals = {"created": 0, "records": 0, "deleted": 0}
        async with await psycopg.AsyncConnection.connect(self.config.db, autocommit=True) as conn:
            await conn.execute(ARCHIVES_TABLE)
            orgs = await (
                await conn.execute("SELECT id, created_on FROM orgs_org WHERE is_active ORDER BY id")
            ).fetchall()
            for org_id, created_on in orgs:
                if self.config.archive_messages:
                    for archive in await self.missing_archives(conn, org_id, created_on, now):
                        await self.build(conn, archive)
                        await self.store.put(archive)
                        await self.record(conn, archive)
                        totals["created"] += 1
                        totals["records"] += archive.record_count
                        log.info(
                            "archived org %s day %s: %d messages to s3://%s/%s",
                            org_id,
                            archive.start_date,
                            archive.record_count,
                            self.store.bucket,
                            archive.key,
                        )
                if self.config.delete:
                    totals["deleted"] += await self.delete_archived(conn, org_id)
        return totals

    async def missing_archives(
        self, conn: psycopg.AsyncConnection[Any], org_id: int, org_created: datetime, now: datetime
    ) -> list[Archive]:
        first = await (
            await conn.execute("SELECT min(created_on) FROM msgs_msg WHERE org_id = %s", (org_id,))
        ).fetchone()
        start = day(min(org_created, first[0]) if first and first[0] else org_created)
        end = day(now - self.config.retention)  # the first day not yet past retention
        done = {
            row[0]
            for row in await (
                await conn.execute(
                    "SELECT start_date FROM archives_archive WHERE org_id = %s AND archive_type = %s AND period = %s",
                    (org_id, ARCHIVE_TYPE, DAY_PERIOD),
                )
            ).fetchall()
        }
        missing = []
        current = start
        while current < end:
            if current not in done:
                missing.append(Archive(org_id=org_id, start_date=current))
            current += timedelta(days=1)
        return missing

    async def build(self, conn: psycopg.AsyncConnection[Any], archive: Archive) -> None:
        started = time.monotonic()
        buffer = io.BytesIO()
        count = 0
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
            async with conn.cursor() as cur:
                await cur.execute(_SELECT_MESSAGES, (archive.org_id, archive.start, archive.end))
                async for (record,) in cur:
                    gz.write(record.encode())
                    gz.write(b"\n")
                    count += 1
        archive.body = buffer.getvalue()
        archive.record_count = count
        archive.size = len(archive.body)
        archive.hash = hashlib.md5(archive.body).hexdigest()
        archive.url = f"{self.config.s3_endpoint.rstrip('/')}/{self.store.bucket}/{archive.key}"
        archive.build_time_ms = int((time.monotonic() - started) * 1000)

    async def record(self, conn: psycopg.AsyncConnection[Any], archive: Archive) -> None:
        await conn.execute(
            "INSERT INTO archives_archive (archive_type, org_id, start_date, period, record_count, size, hash, url, "
            "needs_deletion, build_time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, true, %s)",
            (
                ARCHIVE_TYPE,
                archive.org_id,
                archive.start_date,
                DAY_PERIOD,
                archive.record_count,
                archive.size,
                archive.hash,
                archive.url,
                archive.build_time_ms,
            ),
        )

    async def delete_archived(self, conn: psycopg.AsyncConnection[Any], org_id: int) -> int:
        rows = await (
            await conn.execute(
                "SELECT id, start_date, record_count, hash, url FROM archives_archive "
                "WHERE org_id = %s AND archive_type = %s AND needs_deletion ORDER BY start_date",
                (org_id, ARCHIVE_TYPE),
            )
        ).fetchall()
        deleted = 0
        for archive_id, start_date, record_count, md5, url in rows:
            archive = Archive(org_id=org_id, start_date=start_date, hash=md5)
            if self.config.check_s3_hashes and await self.store.etag(archive.key) != md5:
                log.error("not deleting org %s day %s: S3 object %s missing or changed", org_id, start_date, url)
                continue
            ids = [
                r[0]
                for r in await (
                    await conn.execute(
                        "SELECT id FROM msgs_msg WHERE org_id = %s AND created_on >= %s AND created_on < %s",
                        (org_id, archive.start, archive.end),
                    )
                ).fetchall()
            ]
            if len(ids) > record_count:
                log.error(
                    "not deleting org %s day %s: %d messages now, %d archived",
                    org_id,
                    start_date,
                    len(ids),
                    record_count,
                )
                continue
            for i in range(0, len(ids), DELETE_BATCH):
                async with conn.transaction():
                    await conn.execute("DELETE FROM msgs_msg WHERE id = ANY(%s)", (ids[i : i + DELETE_BATCH],))
            await conn.execute(
                "UPDATE archives_archive SET needs_deletion = false, deleted_on = now() WHERE id = %s", (archive_id,)
            )
            deleted += len(ids)
            log.info("deleted %d archived messages of org %s day %s", len(ids), org_id, start_date)
        return deleted
