"""`/api/v2/<endpoint>.json` (and without the suffix)."""

from __future__ import annotations

from django.urls import re_path

from temba.api.views import (
    ContactsEndpoint,
    FlowsEndpoint,
    FlowStartsEndpoint,
    MessagesEndpoint,
    RunsEndpoint,
)

ENDPOINTS = {
    "contacts": ContactsEndpoint,
    "flow_starts": FlowStartsEndpoint,
    "flows": FlowsEndpoint,
    "messages": MessagesEndpoint,
    "runs": RunsEndpoint,
}

urlpatterns = [
    re_path(rf"^{name}(?:\.json)?$", view.as_view(), name=f"api.v2.{name}")
    for name, view in ENDPOINTS.items()
]
