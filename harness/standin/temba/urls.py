"""URL map: the login page (health check) and API v2."""

from __future__ import annotations

from django.urls import include, path

from temba.orgs.views import login_page

urlpatterns = [
    path("", login_page, name="login"),
    path("users/login/", login_page),
    path("api/v2/", include("temba.api.urls")),
]
