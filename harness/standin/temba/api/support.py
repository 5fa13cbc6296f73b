"""API plumbing as RapidPro's temba/api/support.py: token auth, per-org throttle, cursors, errors."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponseServerError
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import APIException
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView, exception_handler

from temba.api.models import APIToken
from temba.mailroom.client import RequestException
from temba.redisconn import get_redis

logger = logging.getLogger(__name__)


class APITokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`; an unknown or inactive key answers 403 "Invalid token" as RapidPro.

    RapidPro lists session authentication first, so DRF never sends a 401 challenge: neither do we.
    """

    model = APIToken

    def authenticate_credentials(self, key: str) -> tuple[Any, APIToken]:
        token = self.model.objects.select_related("user", "org").filter(is_active=True, key=key).first()
        if token is None or not token.user.is_active or not token.org.is_active:
            raise exceptions.AuthenticationFailed("Invalid token")
        return token.user, token

    def authenticate_header(self, request: Request) -> None:  # type: ignore[override]
        return None


class OrgRateThrottle(BaseThrottle):
    """Per-org, per-scope request budget kept in Redis, shared by every web node (RapidPro v9.2.5's
    `OrgUserRateThrottle`: DEFAULT_THROTTLE_RATES, 2500/hour, unless the org's `api_rates` names the scope).

    A fixed window (INCR on a key per window) rather than DRF's sliding list of timestamps: the budget is
    the same, and a generous test rate does not make every request rewrite a list of 100 000 floats.
    """

    def __init__(self) -> None:
        self.retry_after = 0.0

    @staticmethod
    def parse_rate(rate: str) -> tuple[int, int]:
        count, period = rate.split("/")
        return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]

    def allow_request(self, request: Request, view: APIView) -> bool:
        token = request.auth
        if not isinstance(token, APIToken):
            return True
        scope = getattr(view, "throttle_scope", "v2")
        rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **(token.org.api_rates or {})}
        rate = rates.get(scope)
        if rate is None:
            return True  # as DRF: a scope without a rate is not throttled
        limit, duration = self.parse_rate(str(rate))
        now = time.time()
        window = int(now // duration)
        key = f"throttle:{scope}:{token.org_id}:{window}"
        pipe = get_redis().pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, duration + 1)
        count = int(pipe.execute()[0])
        if count > limit:
            self.retry_after = (window + 1) * duration - now
            return False
        return True

    def wait(self) -> float:
        return self.retry_after


class CreatedOnCursorPagination(CursorPagination):
    ordering = ("-created_on", "-id")
    offset_cutoff = 100000


class ModifiedOnCursorPagination(CursorPagination):
    ordering = ("-modified_on", "-id")
    offset_cutoff = 100000

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        if str_to_bool(request.query_params.get("reverse")):
            return ("modified_on", "id")
        return self.ordering


class SentOnCursorPagination(CursorPagination):
    ordering = ("-sent_on", "-id")
    offset_cutoff = 100000


class InvalidQueryError(APIException):
    """A bad query parameter on a list endpoint (400 {"detail": ...})."""

    status_code = status.HTTP_400_BAD_REQUEST


def str_to_bool(text: str | None) -> bool:
    return bool(text) and text.lower() in ("true", "1", "yes", "y")


def temba_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | HttpResponseServerError:
    """DRF's JSON errors for API exceptions; anything else is RapidPro's plain 500 (never an HTML page)."""
    response = exception_handler(exc, context)
    if response is not None:
        return response
    if isinstance(exc, DatabaseError | RedisError | RequestException | httpx.HTTPError):
        logger.error("API request failed on a backing store or mailroom: %s", exc)
    else:
        logger.error("Exception in API request: %s", exc, exc_info=exc)
    return HttpResponseServerError("Server Error. Site administrators have been notified.")
