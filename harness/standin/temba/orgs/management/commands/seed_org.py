"""`manage.py seed_org --flows DIR_OR_FILE... --send-url URL`: the org the harness drives, idempotently.

Creates (or brings up to date) the org with the harness's API rates, its admin user and API token, one
External (EX) channel whose send_url points at the harness' aggregator, and the flows and keyword
triggers of the given exports.
Prints one JSON line: {org_id, org_uuid, channel_uuid, api_token, flows: {name: uuid}}.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from temba.api.models import APIToken
from temba.channels.models import Channel
from temba.flows.importing import FlowExportError, export_files, import_export, read_export
from temba.orgs.models import Org

# Courier's External channel defaults (docs: rapidpro-contracts "Outbound"), with one request per message.
EX_DEFAULT_BODY = (
    "id={{id}}&text={{text}}&to={{to}}&to_no_plus={{to_no_plus}}&from={{from}}"
    "&from_no_plus={{from_no_plus}}&channel={{channel}}"
)
EX_MAX_LENGTH = 640
DEFAULT_TPS = 10
CHANNEL_ADDRESS = "+12065550100"
# The harness's own seed choice, not RapidPro's: a new org has no api_rates, so every API scope gets the
# real default of 2500 requests/hour, which an API-heavy workload (flow starts through the API, reads
# following the cursor) could spend within one experiment and then measure the throttle, not the fault.
# The seeded org gets this rate on every scope instead, as an operator would raise a busy org's rates.
HARNESS_API_RATE = "100000/hour"


def channel_config(send_url: str) -> dict[str, Any]:
    return {
        "send_url": send_url,
        "method": "POST",
        "content_type": "urlencoded",
        "body": EX_DEFAULT_BODY,
        "max_length": EX_MAX_LENGTH,
        "send_authorization": "",
        "headers": {},
        "mt_response_check": "",
    }


def user_name_for(org_name: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in org_name.lower()).strip("-") or "org"
    return f"admin@{slug}.example.com"


class Command(BaseCommand):
    help = "Create or update the harness' org, user, API token, EX channel, flows and triggers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--flows", nargs="+", required=True, type=Path, metavar="DIR_OR_FILE")
        parser.add_argument("--send-url", required=True, help="where the EX channel sends (the aggregator)")
        parser.add_argument("--name", default="Resilience", help="org name (the org's identity for re-runs)")
        parser.add_argument("--tps", type=int, default=DEFAULT_TPS, help="channel TPS (courier queue key)")
        parser.add_argument(
            "--api-rate",
            default=HARNESS_API_RATE,
            help="the org's API rate on every scope (its api_rates); '' leaves RapidPro's default, 2500/hour",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        send_url: str = options["send_url"]
        if urlsplit(send_url).scheme not in {"http", "https"} or not urlsplit(send_url).netloc:
            raise CommandError(f"--send-url: expected an http(s):// URL, got {send_url!r}")
        if options["tps"] < 1:
            raise CommandError(f"--tps: expected a positive integer, got {options['tps']}")
        api_rate: str = options["api_rate"]
        if api_rate and not re.fullmatch(settings.API_RATE_PATTERN, api_rate):
            raise CommandError(f"--api-rate: expected <requests>/<second|minute|hour|day> or '', got {api_rate!r}")
        try:
            exports = [read_export(path) for path in export_files(options["flows"])]
        except FlowExportError as exc:
            raise CommandError(str(exc)) from None

        with transaction.atomic():
            # one seed at a time: two nodes seeding at start must not make two orgs
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext('temba.seed_org'))")
            org = self.ensure_org(options["name"], api_rate)
            user = self.ensure_user(org)
            token = self.ensure_token(org, user)
            channel = self.ensure_channel(org, send_url, options["tps"])
            flows: dict[str, str] = {}
            try:
                for export in exports:
                    flows.update(import_export(org, export))
            except FlowExportError as exc:
                raise CommandError(str(exc)) from None

        seeded = {
            "org_id": org.id,
            "org_uuid": str(org.uuid),
            "channel_uuid": str(channel.uuid),
            "api_token": token.key,
            "flows": flows,
        }
        self.stdout.write(json.dumps(seeded))

    @staticmethod
    def ensure_org(name: str, api_rate: str) -> Org:
        api_rates = {scope: api_rate for scope in settings.API_THROTTLE_SCOPES} if api_rate else {}
        org = Org.objects.filter(name=name, is_active=True).order_by("id").first()
        if org is None:
            return Org.objects.create(name=name, api_rates=api_rates)
        org.api_rates = api_rates
        org.save(update_fields=["api_rates"])
        return org

    @staticmethod
    def ensure_user(org: Org) -> User:
        user, _ = User.objects.get_or_create(
            username=user_name_for(org.name), defaults={"email": user_name_for(org.name), "is_active": True}
        )
        return user

    @staticmethod
    def ensure_token(org: Org, user: User) -> APIToken:
        token = APIToken.objects.filter(org=org, user=user, is_active=True).order_by("created").first()
        return token or APIToken.objects.create(org=org, user=user)

    @staticmethod
    def ensure_channel(org: Org, send_url: str, tps: int) -> Channel:
        channel = (
            Channel.objects.filter(org=org, channel_type=Channel.TYPE_EXTERNAL, is_active=True)
            .order_by("id")
            .first()
        )
        if channel is None:
            return Channel.objects.create(
                org=org,
                channel_type=Channel.TYPE_EXTERNAL,
                name="External",
                address=CHANNEL_ADDRESS,
                config=channel_config(send_url),
                tps=tps,
            )
        channel.config = {**channel.config, **channel_config(send_url)}
        channel.tps = tps
        channel.save(update_fields=["config", "tps"])
        return channel
