"""Personal data at rest: AES-GCM ciphertexts and keyed blind indexes for lookup.

The data key comes from configuration (PERKFLOW_DATA_KEY, base64 of 32 bytes, or a key file),
never from the database. A row records the id of the key that encrypted it, so a rotation can
re-encrypt in batches while every row stays readable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"perkflow-key-id:" + key).hexdigest()[:16]


@dataclass(frozen=True)
class DataKeys:
    current: bytes
    previous: tuple[bytes, ...] = ()

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def _by_id(self, kid: str) -> bytes:
        for key in (self.current, *self.previous):
            if key_id(key) == kid:
                return key
        raise KeyError(f"no data key with id {kid}: configure the key that encrypted this row")

    def encrypt(self, text: str, context: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(self.current).encrypt(nonce, text.encode(), context.encode())

    def decrypt(self, blob: bytes, kid: str, context: str) -> str:
        key = self._by_id(kid)
        return AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], context.encode()).decode()

    def index(self, kind: str, normalized: str) -> str:
        """A keyed blind index: equal inputs match, and the value tells nothing without the key.
        It is derived from the first key ever used (kept in `previous` after a rotation)."""
        root = (self.previous[-1] if self.previous else self.current)
        index_key = hmac.new(root, b"perkflow-blind-index-v1", hashlib.sha256).digest()
        return hmac.new(index_key, f"{kind}:{normalized}".encode(), hashlib.sha256).hexdigest()


def normalize_phone(raw: str, region: str = "CN") -> str | None:
    """E.164 (+8613800000000); Chinese mobile numbers without a country code are the common case."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str | None:
    text = raw.strip().lower()
    local, at, domain = text.partition("@")
    return text if at and local and "." in domain and " " not in text else None


def load_keys(data_dir: Path, env_value: str | None = None) -> DataKeys:
    """The data key from PERKFLOW_DATA_KEY, else from data_dir/data.key (created on first start)."""
    if env_value:
        return DataKeys(base64.b64decode(env_value))
    path = data_dir / "data.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64encode(secrets.token_bytes(32)))
        path.chmod(0o600)
    return DataKeys(base64.b64decode(path.read_bytes()))
