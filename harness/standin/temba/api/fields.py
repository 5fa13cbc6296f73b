"""Reference fields as RapidPro's temba/api/v2/fields.py: objects by UUID within the org, URNs normalized."""

from __future__ import annotations

import re
import uuid as uuidlib
from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import serializers

from temba.contacts.models import Contact, ContactURN
from temba.flows.models import Flow

# The URN schemes RapidPro knows; a tel path must be E.164 (+ and 7-15 digits) once spaces and dashes go.
URN_SCHEMES = frozenset(
    {
        "tel",
        "facebook",
        "twitter",
        "twitterid",
        "viber",
        "line",
        "telegram",
        "mailto",
        "ext",
        "jiochat",
        "wechat",
        "fcm",
        "whatsapp",
        "freshchat",
        "vk",
        "discord",
        "webchat",
        "rocketchat",
        "instagram",
        "slack",
    }
)
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def normalize_urn(value: str) -> str:
    """`tel:+250 788-123-123` -> `tel:+250788123123`; raises ValueError on anything RapidPro would refuse."""
    scheme, sep, path = value.partition(":")
    scheme = scheme.strip().lower()
    path = path.strip()
    if not sep or scheme not in URN_SCHEMES or not path:
        raise ValueError(value)
    if scheme == "tel":
        path = re.sub(r"[\s\-().]", "", path)
        if not E164.fullmatch(path):
            raise ValueError(value)
    return f"{scheme}:{path}"


def is_uuid(value: Any) -> bool:
    try:
        uuidlib.UUID(str(value))
    except ValueError:
        return False
    return True


class URNField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=255, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        try:
            return normalize_urn(str(data))
        except ValueError:
            raise serializers.ValidationError(
                f"Invalid URN: {data}. Ensure phone numbers contain country codes."
            ) from None


class OrgObjectField(serializers.RelatedField):
    """An active object of the request's org, referenced by UUID; {"uuid", "name"} when rendered."""

    model: type[Model]
    default_error_messages = {"does_not_exist": "No such object: {value}"}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", False)
        if not kwargs["read_only"]:
            kwargs.setdefault("queryset", self.model.objects.none())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        return self.model.objects.filter(org=self.context["org"], is_active=True)

    def lookup(self, data: Any) -> Model | None:
        return self.get_queryset().filter(uuid=data).first() if is_uuid(data) else None

    def to_internal_value(self, data: Any) -> Model:
        if not isinstance(data, str | int) or isinstance(data, bool):
            raise serializers.ValidationError("Must be a string or integer")
        obj = self.lookup(data)
        if obj is None:
            raise serializers.ValidationError(f"No such object: {data}")
        return obj

    def to_representation(self, value: Any) -> dict[str, Any]:
        return {"uuid": str(value.uuid), "name": value.name}


class FlowField(OrgObjectField):
    model = Flow


class ContactField(OrgObjectField):
    """A contact by UUID or by one of its URNs, as RapidPro's ContactField."""

    model = Contact

    def lookup(self, data: Any) -> Model | None:
        contacts = self.get_queryset()
        if is_uuid(data):
            return contacts.filter(uuid=data).first()
        try:
            identity = normalize_urn(str(data))
        except ValueError:
            return None
        contact_ids = ContactURN.objects.filter(org=self.context["org"], identity=identity).values(
            "contact_id"
        )
        return contacts.filter(id__in=contact_ids).first()


class NoGroupField(serializers.CharField):
    """Contact groups: the stand-in has none, so any reference is an unknown object (as RapidPro's answer
    for a group that does not exist)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str | int) or isinstance(data, bool):
            raise serializers.ValidationError("Must be a string or integer")
        raise serializers.ValidationError(f"No such object: {data}")
