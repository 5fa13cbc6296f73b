"""Sending one chat message to a contact from the web itself: the stand-in's behaviour before issue 9, kept
for the switch `api_send_through_mailroom` off (no real version does this; RapidPro v9.2.5 asks mailroom's
`/mr/msg/send`, see `temba/mailroom/client.py`).

Insert the outgoing message as queued (Q), commit, then push it to courier's queue; if the push fails the
message goes back to initializing (I) with a next attempt in 10 minutes, for mailroom's retry cron.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from temba.channels.models import Channel
from temba.contacts.models import Contact, ContactURN
from temba.mailroom.courier import courier_msg, push_to_courier
from temba.msgs.models import Msg
from temba.orgs.models import Org

logger = logging.getLogger(__name__)

REQUEUE_DELAY = timedelta(minutes=10)


def preferred_urn(contact: Contact) -> ContactURN | None:
    return contact.urns.order_by("-priority", "id").select_related("channel").first()


def sending_channel(org: Org, urn: ContactURN | None) -> Channel | None:
    if urn is not None and urn.channel is not None and urn.channel.is_active:
        return urn.channel
    return Channel.objects.filter(org=org, is_active=True).order_by("id").first()


def send_chat_msg(org: Org, contact: Contact, text: str) -> Msg:
    urn = preferred_urn(contact)
    channel = sending_channel(org, urn)
    if urn is None or channel is None:
        # mailroom fails a message it has no URN or channel to send by when it creates it
        return create_msg(org, contact, text, Msg.STATUS_FAILED, urn=None, channel=None)
    msg = create_msg(org, contact, text, Msg.STATUS_QUEUED, urn=urn, channel=channel)
    try:
        push_to_courier(
            [courier_msg(msg, urn.identity, str(channel.uuid))], str(channel.uuid), channel.tps, False
        )
    except RedisError as exc:
        logger.error("queueing msg %d to courier failed, marking it for retry: %s", msg.id, exc)
        msg.status = Msg.STATUS_INITIALIZING
        msg.next_attempt = timezone.now() + REQUEUE_DELAY
        Msg.objects.filter(id=msg.id).update(status=msg.status, next_attempt=msg.next_attempt)
    return msg


def create_msg(
    org: Org, contact: Contact, text: str, status: str, *, urn: ContactURN | None, channel: Channel | None
) -> Msg:
    now = timezone.now()
    with transaction.atomic():
        return Msg.objects.create(
            org=org,
            channel=channel,
            contact=contact,
            contact_urn=urn,
            direction=Msg.DIRECTION_OUT,
            status=status,
            high_priority=False,
            text=text,
            created_on=now,
            modified_on=now,
            queued_on=now if status == Msg.STATUS_QUEUED else None,
        )
