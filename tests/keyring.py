"""Managed keys for tests: made by the real service, in the test's own Redis prefix."""

from rest_framework.test import APIClient

from sop_llm.access.apikeys.services import key_create
from sop_llm.access.principals import Limits


def issue(*scopes: str, name: str | None = None, **limits) -> tuple[dict, str]:
    """-> (the key's record, the key)."""
    name = name or f"{'-'.join(scopes)}-{len(limits)}-{id(limits) % 10_000}"
    return key_create(name=name, scopes=list(scopes), limits=Limits(**limits))


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def bearer(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {key}".encode())]
