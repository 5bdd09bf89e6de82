"""The admin console: every model's list page renders, and the project actions work."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from annotator import services
from annotator.models import Item, Project
from tests.factories import make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_logged_in():
    client = Client()
    client.force_login(make_user("root", superuser=True))
    return client


def test_every_model_list_renders(admin_client_logged_in, user):
    project = make_project(user)
    services.items_import_uploads(project=project, files=[("a.png", io.BytesIO(png_bytes(1)))], user=user)
    for model in ["project", "membership", "labelclass", "item", "annotation", "modelversion"]:
        response = admin_client_logged_in.get(f"/admin/annotator/{model}/?q=a")
        assert response.status_code == 200, model


def test_actions_retrain_and_release(admin_client_logged_in, user):
    project = make_project(user)
    services.items_import_uploads(project=project, files=[("a.png", io.BytesIO(png_bytes(1)))], user=user)
    Item.objects.update(lease_user=user, lease_until=timezone.now() - timedelta(minutes=1))
    url = "/admin/annotator/project/"
    admin_client_logged_in.post(url, {"action": "release_stale_leases", "_selected_action": [project.id]})
    assert Item.objects.get().lease_user is None
    admin_client_logged_in.post(url, {"action": "retrain", "_selected_action": [project.id]})
    assert Project.objects.get().training_requested
