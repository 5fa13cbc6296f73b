"""The login page: what RapidPro's `GET /` serves, used as the web's HTTP health check."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

LOGIN_HTML = """<!DOCTYPE html>
<html><head><title>Sign In - RapidPro (stand-in)</title></head>
<body><form method="post" action="/users/login/">
<label>Email <input name="username" type="email"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign In</button>
</form></body></html>
"""


def login_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(LOGIN_HTML, content_type="text/html; charset=utf-8")
