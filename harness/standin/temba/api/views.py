"""API v2 endpoints: messages, contacts, flows, runs, flow_starts (RapidPro v9 temba/api/v2/views.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Count, Prefetch, QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from temba.api.fields import normalize_urn
from temba.api.models import APIToken
from temba.api.serializers import (
    RUN_STATUS_NAMES,
    ContactReadSerializer,
    FlowReadSerializer,
    FlowRunReadSerializer,
    FlowStartReadSerializer,
    FlowStartWriteSerializer,
    MsgReadSerializer,
    MsgWriteSerializer,
    empty_run_counts,
)
from temba.api.support import (
    APITokenAuthentication,
    CreatedOnCursorPagination,
    InvalidQueryError,
    ModifiedOnCursorPagination,
    OrgRateThrottle,
    SentOnCursorPagination,
    str_to_bool,
)
from temba.contacts.models import Contact, ContactURN
from temba.flows.models import Flow, FlowRun, FlowStart
from temba.flows.starting import create_flow_start
from temba.msgs.models import Msg
from temba.msgs.sending import send_chat_msg
from temba.orgs.models import Org


def parse_param_datetime(value: str) -> datetime | None:
    parsed = parse_datetime(value.replace(" ", "+"))  # a "+" in a query string arrives as a space
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


class BaseEndpoint(generics.GenericAPIView):
    authentication_classes = (APITokenAuthentication,)
    permission_classes = (IsAuthenticated,)
    throttle_classes = (OrgRateThrottle,)
    throttle_scope = "v2"
    serializer_class: Any = None
    exclusive_params: tuple[str, ...] = ()

    @property
    def org(self) -> Org:
        token = self.request.auth
        assert isinstance(token, APIToken)  # guaranteed by IsAuthenticated + token auth
        return token.org

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "org": self.org, "user": self.request.user}

    def get_int_param(self, name: str) -> int | None:
        value = self.request.query_params.get(name)
        try:
            return int(value) if value is not None else None
        except ValueError:
            raise InvalidQueryError(f"Value for {name} must be an integer") from None

    def get_uuid_param(self, name: str) -> UUID | None:
        value = self.request.query_params.get(name)
        try:
            return UUID(value) if value is not None else None
        except ValueError:
            raise InvalidQueryError(f"Value for {name} must be a valid UUID") from None

    def filter_before_after(self, queryset: QuerySet[Any], field: str) -> QuerySet[Any]:
        """RapidPro: an unparseable before/after matches nothing rather than failing the request."""
        for param, lookup in (("before", "lte"), ("after", "gte")):
            value = self.request.query_params.get(param)
            if value:
                when = parse_param_datetime(value)
                queryset = queryset.filter(**{f"{field}__{lookup}": when}) if when else queryset.none()
        return queryset

    def check_query(self) -> None:
        given = [p for p in self.exclusive_params if self.request.query_params.get(p)]
        if len(given) > 1:
            raise InvalidQueryError(
                f"You may only specify one of the {', '.join(self.exclusive_params)} parameters"
            )

    def contact_param(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        contact_uuid = self.request.query_params.get("contact")
        if not contact_uuid:
            return queryset
        try:
            UUID(contact_uuid)
        except ValueError:
            return queryset.none()
        contact = Contact.objects.filter(org=self.org, is_active=True, uuid=contact_uuid).first()
        return queryset.filter(contact=contact) if contact else queryset.none()

    def page_context(self, page: list[Any]) -> dict[str, Any]:
        return {}

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.check_query()
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset) or []
        context = {**self.get_serializer_context(), **self.page_context(page)}
        return self.get_paginated_response(self.serializer_class(page, many=True, context=context).data)


class MessagesEndpoint(BaseEndpoint):
    serializer_class = MsgReadSerializer
    exclusive_params = ("contact", "folder", "label", "broadcast")
    throttle_scope = "v2.messages"

    # Folders as RapidPro's SystemLabel querysets.
    FOLDERS: dict[str, dict[str, Any]] = {
        "inbox": {"direction": "I", "visibility": "V", "status": "H", "flow__isnull": True, "msg_type": "T"},
        "flows": {"direction": "I", "visibility": "V", "status": "H", "flow__isnull": False, "msg_type": "T"},
        "archived": {"direction": "I", "visibility": "A", "status": "H", "msg_type": "T"},
        "outbox": {"direction": "O", "visibility": "V", "status__in": ("I", "Q", "E")},
        "sent": {"direction": "O", "visibility": "V", "status__in": ("W", "S", "D")},
        "failed": {"direction": "O", "visibility": "V", "status": "F"},
        "incoming": {"direction": "I", "status": "H"},
    }

    def get_paginator_class(self) -> type[CreatedOnCursorPagination]:
        folder = self.request.query_params.get("folder", "").lower()
        if folder == "incoming":
            return ModifiedOnCursorPagination  # type: ignore[return-value]
        if folder == "sent":
            return SentOnCursorPagination  # type: ignore[return-value]
        return CreatedOnCursorPagination

    @property
    def paginator(self) -> Any:
        if not hasattr(self, "_paginator"):
            self._paginator = self.get_paginator_class()()
        return self._paginator

    def get_queryset(self) -> QuerySet[Msg]:
        folder = self.request.query_params.get("folder")
        msgs = Msg.objects.filter(org=self.org)
        if folder:
            # RapidPro matches "incoming" case-sensitively and the system folders in any case
            key = folder.lower() if folder.lower() != "incoming" else folder
            criteria = self.FOLDERS.get(key)
            return msgs.filter(**criteria) if criteria is not None else msgs.none()
        return msgs.filter(visibility__in=("V", "A")).exclude(status=Msg.STATUS_PENDING)

    def filter_queryset(self, queryset: QuerySet[Msg]) -> QuerySet[Msg]:
        params = self.request.query_params
        msg_id = self.get_int_param("id")
        if msg_id:
            queryset = queryset.filter(id=msg_id)
        if params.get("broadcast") or params.get("label"):
            queryset = queryset.none()  # the stand-in has neither broadcasts nor labels
        queryset = self.contact_param(queryset)
        queryset = queryset.select_related("contact", "contact_urn", "channel", "flow")
        field = "modified_on" if params.get("folder", "").lower() == "incoming" else "created_on"
        return self.filter_before_after(queryset, field)

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        context = self.get_serializer_context()
        serializer = MsgWriteSerializer(data=request.data, context=context)
        if not serializer.is_valid():
            return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
        if settings.SWITCHES["api_send_through_mailroom"]:
            msg = serializer.save()
        else:  # the stand-in before issue 9: web inserts the message and queues it to courier itself
            data = serializer.validated_data
            msg = send_chat_msg(self.org, data["contact"], data.get("text", ""))
            msg = Msg.objects.select_related("contact", "contact_urn", "channel", "flow").get(id=msg.id)
        return Response(MsgReadSerializer(msg, context=context).data, status=status.HTTP_201_CREATED)


class ContactsEndpoint(BaseEndpoint):
    serializer_class = ContactReadSerializer
    pagination_class = ModifiedOnCursorPagination
    throttle_scope = "v2.contacts"

    def get_queryset(self) -> QuerySet[Contact]:
        deleted = str_to_bool(self.request.query_params.get("deleted"))
        return Contact.objects.filter(org=self.org, is_active=not deleted)

    def filter_queryset(self, queryset: QuerySet[Contact]) -> QuerySet[Contact]:
        params = self.request.query_params
        contact_uuid = params.get("uuid")
        if contact_uuid:
            queryset = queryset.filter(uuid=contact_uuid) if self.get_uuid_param("uuid") else queryset.none()
        urn = params.get("urn")
        if urn:
            try:
                identity = normalize_urn(urn)
            except ValueError:
                raise InvalidQueryError(f"Invalid URN: {urn}") from None
            queryset = queryset.filter(
                id__in=ContactURN.objects.filter(org=self.org, identity=identity).values("contact_id")
            )
        queryset = queryset.select_related("current_flow").prefetch_related(
            Prefetch("urns", queryset=ContactURN.objects.order_by("-priority", "id"))
        )
        return self.filter_before_after(queryset, "modified_on")


class FlowsEndpoint(BaseEndpoint):
    serializer_class = FlowReadSerializer
    pagination_class = CreatedOnCursorPagination
    TYPES = {"message": "M", "voice": "V", "background": "B", "survey": "S"}

    def get_queryset(self) -> QuerySet[Flow]:
        return Flow.objects.filter(org=self.org, is_active=True)

    def filter_queryset(self, queryset: QuerySet[Flow]) -> QuerySet[Flow]:
        params = self.request.query_params
        if params.get("uuid"):
            queryset = (
                queryset.filter(uuid=params["uuid"]) if self.get_uuid_param("uuid") else queryset.none()
            )
        if params.get("type"):
            queryset = queryset.filter(flow_type=self.TYPES.get(params["type"], "-"))
        if params.get("archived") and str_to_bool(params["archived"]):
            queryset = queryset.none()  # no flow is archived in the stand-in
        return self.filter_before_after(queryset, "modified_on")

    def page_context(self, page: list[Flow]) -> dict[str, Any]:
        counts: dict[int, dict[str, int]] = {flow.id: empty_run_counts() for flow in page}
        rows = (
            FlowRun.objects.filter(flow_id__in=counts.keys())
            .values_list("flow_id", "status")
            .annotate(total=Count("id"))
        )
        for flow_id, run_status, total in rows:
            name = RUN_STATUS_NAMES.get(run_status)
            if name:
                counts[flow_id][name] = total
        return {"run_counts": counts}


class RunsEndpoint(BaseEndpoint):
    serializer_class = FlowRunReadSerializer
    pagination_class = ModifiedOnCursorPagination
    exclusive_params = ("contact", "flow")
    throttle_scope = "v2.runs"

    def get_queryset(self) -> QuerySet[FlowRun]:
        return FlowRun.objects.filter(org=self.org)

    def filter_queryset(self, queryset: QuerySet[FlowRun]) -> QuerySet[FlowRun]:
        params = self.request.query_params
        flow_uuid = params.get("flow")
        if flow_uuid:
            flow = None
            if self.get_uuid_param("flow"):
                flow = Flow.objects.filter(org=self.org, uuid=flow_uuid, is_active=True).first()
            queryset = queryset.filter(flow=flow) if flow else queryset.none()
        run_id = self.get_int_param("id")
        if run_id:
            queryset = queryset.filter(id=run_id)
        run_uuid = self.get_uuid_param("uuid")
        if run_uuid:
            queryset = queryset.filter(uuid=run_uuid)
        queryset = self.contact_param(queryset)
        if str_to_bool(params.get("responded")):
            queryset = queryset.filter(responded=True)
        queryset = queryset.select_related("flow", "contact").prefetch_related("contact__urns")
        return self.filter_before_after(queryset, "modified_on")

    def get_serializer_context(self) -> dict[str, Any]:
        paths = self.request.query_params.get("paths", "true")
        return {**super().get_serializer_context(), "include_paths": str_to_bool(paths)}


class FlowStartsEndpoint(BaseEndpoint):
    serializer_class = FlowStartReadSerializer
    pagination_class = ModifiedOnCursorPagination
    USER_START_TYPES = ("M", "A", "Z")  # RapidPro lists only starts made by users, not by mailroom

    def get_queryset(self) -> QuerySet[FlowStart]:
        return FlowStart.objects.filter(org=self.org, start_type__in=self.USER_START_TYPES)

    def filter_queryset(self, queryset: QuerySet[FlowStart]) -> QuerySet[FlowStart]:
        start_id = self.get_int_param("id")
        if start_id:
            queryset = queryset.filter(id=start_id)
        start_uuid = self.get_uuid_param("uuid")
        if start_uuid:
            queryset = queryset.filter(uuid=start_uuid)
        return self.filter_before_after(queryset.select_related("flow"), "modified_on")

    def page_context(self, page: list[FlowStart]) -> dict[str, Any]:
        uuids = {u for start in page for u in start.contact_uuids or []}
        contacts = Contact.objects.filter(org=self.org, uuid__in=uuids).values_list("uuid", "name")
        return {"start_contacts": {str(u): {"uuid": str(u), "name": name} for u, name in contacts}}

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        context = self.get_serializer_context()
        serializer = FlowStartWriteSerializer(data=request.data, context=context)
        if not serializer.is_valid():
            return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
        data = serializer.validated_data
        start = create_flow_start(
            data["flow"],
            user_id=request.user.id,
            start_type=FlowStart.TYPE_API,
            contacts=data.get("contacts", []),
            urns=data.get("urns", []),
            restart_participants=data.get("restart_participants", True),
            params=data.get("params") or data.get("extra"),
        )
        context.update(self.page_context([start]))
        return Response(FlowStartReadSerializer(start, context=context).data, status=status.HTTP_201_CREATED)
