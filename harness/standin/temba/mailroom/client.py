"""Django's HTTP client of mailroom, as RapidPro v9.2.5's `temba/mailroom/client/client.py`.

Only the endpoint the stand-in web uses (`msg/send`, which never answers the 422 validation errors
real maps to their own exceptions). As real: `POST <MAILROOM_URL>/mr/<endpoint>` with a
JSON body, `Authorization: Token <MAILROOM_AUTH_TOKEN>` when one is set, and *no* timeout, so a mailroom
that accepts the connection and never answers holds the API request (and its gunicorn worker) as long as
gunicorn lets it. A 4xx/5xx answer raises `RequestException`; a refused or broken connection raises the
HTTP library's own error. RapidPro's API handles neither, so both end as its plain 500.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings

USER_AGENT = "Temba"


class RequestException(Exception):
    """Mailroom answered an error status (RapidPro: `temba.mailroom.client.exceptions.RequestException`)."""

    def __init__(self, endpoint: str, payload: dict[str, Any], response: httpx.Response) -> None:
        self.endpoint = endpoint
        self.payload = payload
        self.response = response
        try:
            body = response.json()
            self.error = str(body.get("error")) if isinstance(body, dict) else response.text
        except ValueError:
            self.error = response.text
        super().__init__(self.error)

    def __str__(self) -> str:
        return self.error


class MailroomClient:
    def __init__(self, base_url: str, auth_token: str) -> None:
        self.base_url = base_url
        self.headers = {"User-Agent": USER_AGENT}
        if auth_token:
            self.headers["Authorization"] = f"Token {auth_token}"

    def msg_send(
        self, org_id: int, user_id: int, contact_id: int, text: str, attachments: list[str], ticket_id: int | None
    ) -> dict[str, Any]:
        payload = {
            "org_id": org_id,
            "user_id": user_id,
            "contact_id": contact_id,
            "text": text,
            "attachments": attachments,
            "ticket_id": ticket_id,
        }
        result: dict[str, Any] = self._request("msg/send", payload)
        return result

    def _request(self, endpoint: str, payload: dict[str, Any]) -> Any:
        response = httpx.post(f"{self.base_url}/mr/{endpoint}", json=payload, headers=self.headers, timeout=None)
        if 400 <= response.status_code < 600:
            raise RequestException(endpoint, payload, response)
        return response.json()


def get_client() -> MailroomClient:
    return MailroomClient(settings.MAILROOM_URL, settings.MAILROOM_AUTH_TOKEN)
