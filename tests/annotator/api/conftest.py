"""Fixtures for the API tests: a project made through the API by the logged-in manager."""

from __future__ import annotations

import pytest


@pytest.fixture
def project(api):
    response = api.post("/api/projects/", {"name": "Pets", "labels": ["cat", "dog"]}, format="json")
    assert response.status_code == 201
    return response.json()
