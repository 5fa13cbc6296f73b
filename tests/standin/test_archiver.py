"""Archiver stand-in: old messages to S3 (moto) as gzipped JSON lines; deletion only when configured."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pytest
from test_mailroom_support import (
    STANDIN_SRC,
    db_fixture,  # noqa: F401 - fixture
    free_port,
    migrated_pg_fixture,  # noqa: F401 - fixture
    receive,
    seed_org,
    wait_for,
)

BUCKET = "temba-archives"


@pytest.fixture()
def s3_url(tmp_path: Path) -> Iterator[str]:
    binary = Path(sys.executable).parent / "moto_server"  # installed beside the interpreter running the tests
    if not binary.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    log = (tmp_path / "moto.log").open("w")
    proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, timeout=20, what="moto_server")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def s3(url: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


def run_archiver(pg: str, s3_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "standin.archiver"],
        env={
            **os.environ,
            "PYTHONPATH": str(STANDIN_SRC),
            "ARCHIVER_DB": pg,
            "ARCHIVER_S3_ENDPOINT": s3_url,
            "ARCHIVER_S3_BUCKET": BUCKET,
            "ARCHIVER_AWS_ACCESS_KEY_ID": "test",
            "ARCHIVER_AWS_SECRET_ACCESS_KEY": "test",
            "ARCHIVER_ONCE": "true",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture()
def history(db: psycopg.Connection[Any]) -> dict[str, Any]:
    """An org with messages 3 days old, 2 days old and from now."""
    seed = seed_org(db)
    now = datetime.now(UTC)
    three = receive(db, None, seed, "tel:+250788000050", "three days ago", created_on=now - timedelta(days=3))
    two = receive(db, None, seed, "tel:+250788000050", "two days ago", created_on=now - timedelta(days=2))
    today = receive(db, None, seed, "tel:+250788000050", "just now")
    return {"seed": seed, "three": three, "two": two, "today": today, "now": now}


def objects(url: str, org_id: int) -> dict[str, list[dict[str, Any]]]:
    client = s3(url)
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{org_id}/").get("Contents", [])
    found = {}
    for item in listed:
        body = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        found[item["Key"]] = [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]
    return found


@pytest.mark.parametrize("retention", [{"ARCHIVER_RETENTION_PERIOD": "1"}, {"ARCHIVER_RETENTION_SECONDS": "86400"}])
def test_old_messages_are_archived_per_org_and_day_and_kept_by_default(
    migrated_pg: str, db: psycopg.Connection[Any], s3_url: str, history: dict[str, Any], retention: dict[str, str]
) -> None:
    s3(s3_url).create_bucket(Bucket=BUCKET)
    done = run_archiver(migrated_pg, s3_url, **retention)
    assert done.returncode == 0, done.stderr
    seed, now = history["seed"], history["now"]
    found = objects(s3_url, seed.org_id)
    day3, day2 = (now - timedelta(days=3)).date(), (now - timedelta(days=2)).date()
    by_day = {key.split("_")[1][1:]: records for key, records in found.items()}
    assert set(by_day) == {f"{day3:%Y%m%d}", f"{day2:%Y%m%d}"}, found.keys()
    assert [r["text"] for r in by_day[f"{day3:%Y%m%d}"]] == ["three days ago"]
    record = by_day[f"{day2:%Y%m%d}"][0]
    assert record["id"] == history["two"].msg_id and record["direction"] == "in" and record["status"] == "queued"
    assert record["urn"] == "tel:+250788000050" and record["channel"]["name"] == "External"
    for key in found:
        assert key.startswith(f"{seed.org_id}/message_D") and key.endswith(".jsonl.gz")
    rows = db.execute(
        "SELECT start_date, record_count, needs_deletion, hash FROM archives_archive ORDER BY start_date"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [(day3, 1, True), (day2, 1, True)]
    assert all(r[3] in key for r, key in zip(rows, sorted(found, key=lambda k: k.split("_")[1]), strict=True))
    assert db.execute("SELECT count(*) FROM msgs_msg").fetchone() == (3,), "ARCHIVER_DELETE is off by default"

    again = run_archiver(migrated_pg, s3_url, **retention)
    assert again.returncode == 0 and len(objects(s3_url, seed.org_id)) == 2, "an archived day is not redone"


def test_delete_removes_archived_messages_only(
    migrated_pg: str, db: psycopg.Connection[Any], s3_url: str, history: dict[str, Any]
) -> None:
    s3(s3_url).create_bucket(Bucket=BUCKET)
    done = run_archiver(migrated_pg, s3_url, ARCHIVER_RETENTION_PERIOD="1", ARCHIVER_DELETE="true")
    assert done.returncode == 0, done.stderr
    assert db.execute("SELECT id FROM msgs_msg").fetchall() == [(history["today"].msg_id,)]
    assert db.execute("SELECT bool_or(needs_deletion), count(deleted_on) FROM archives_archive").fetchone() == (
        False,
        2,
    )


def test_delete_refuses_when_the_s3_object_changed(
    migrated_pg: str, db: psycopg.Connection[Any], s3_url: str, history: dict[str, Any]
) -> None:
    client = s3(s3_url)
    client.create_bucket(Bucket=BUCKET)
    assert run_archiver(migrated_pg, s3_url, ARCHIVER_RETENTION_PERIOD="1").returncode == 0
    for key in objects(s3_url, history["seed"].org_id):
        client.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(b"{}\n"))
    done = run_archiver(migrated_pg, s3_url, ARCHIVER_RETENTION_PERIOD="1", ARCHIVER_DELETE="true")
    assert done.returncode == 0
    assert "missing or changed" in done.stderr
    assert db.execute("SELECT count(*) FROM msgs_msg").fetchone() == (3,)


def test_unreachable_bucket_stops_the_archiver_unless_it_may_create_it(
    migrated_pg: str, db: psycopg.Connection[Any], s3_url: str, history: dict[str, Any]
) -> None:
    done = run_archiver(migrated_pg, s3_url, ARCHIVER_RETENTION_PERIOD="1")
    assert done.returncode == 1 and "s3 bucket 'temba-archives' not reachable" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_archiver(migrated_pg, s3_url, ARCHIVER_RETENTION_PERIOD="1", ARCHIVER_STANDIN_CREATE_BUCKET="true")
    assert done.returncode == 0, done.stderr
    assert len(objects(s3_url, history["seed"].org_id)) == 2


def test_bad_settings_exit_2(tmp_path: Path) -> None:
    done = run_archiver("postgres://x", "http://127.0.0.1:1", ARCHIVER_START_TIME="25:00")
    assert done.returncode == 2 and "ARCHIVER_START_TIME: expected HH:MM" in done.stderr
