"""Provider secrets a caller sends with a task are sealed (Fernet) before they reach Redis."""

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

SECRET_OPTION_KEYS = ("api_key", "headers")


def _fernet() -> Fernet:
    digest = hashlib.sha256(("sop-llm-sealing:" + settings.SECRET_KEY).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(data: dict) -> str:
    return _fernet().encrypt(json.dumps(data).encode()).decode() if data else ""


def unseal(token: str) -> dict:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        # Keys rotated since the task was stored: run without its secrets, the provider says so.
        return {}


def split_options(options: dict) -> tuple[dict, dict]:
    """(options safe to store in clear, the secret part)."""
    public = {k: v for k, v in options.items() if k not in SECRET_OPTION_KEYS}
    secret = {k: v for k, v in options.items() if k in SECRET_OPTION_KEYS and v}
    return public, secret
