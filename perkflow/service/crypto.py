"""Personal data at rest: AES-GCM ciphertexts and keyed blind indexes for lookup.

The data keys come from configuration (PERKFLOW_DATA_KEY, or the key file data.key in the data
folder), never from the database: the current key first, then the older keys still needed to
read rows a rotation has not reached yet. A member row records the id of the key that encrypted
all of its personal data, and its blind indexes are made with an index key derived from that same
data key, so one rotation re-encrypts and re-indexes a row at once, and retiring an old key
retires everything it protected (docs/decisions/0012-personal-data-keys-and-rotation.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12
KEY_BYTES = 32


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"perkflow-key-id:" + key).hexdigest()[:16]


def _index_key(key: bytes) -> bytes:
    return hmac.new(key, b"perkflow-blind-index-v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class DataKeys:
    current: bytes
    previous: tuple[bytes, ...] = ()

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id(k) for k in (self.current, *self.previous))

    def _by_id(self, kid: str) -> bytes:
        for key in (self.current, *self.previous):
            if key_id(key) == kid:
                return key
        raise KeyError(f"no data key with id {kid}: configure the key that encrypted this row")

    def encrypt(self, text: str, context: str, kid: str | None = None) -> bytes:
        """Encrypt under the key `kid` (default: the current key)."""
        key = self._by_id(kid) if kid else self.current
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(key).encrypt(nonce, text.encode(), context.encode())

    def decrypt(self, blob: bytes, kid: str, context: str) -> str:
        key = self._by_id(kid)
        return AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], context.encode()).decode()

    def index(self, kind: str, normalized: str, kid: str | None = None) -> str:
        """A keyed blind index under the key `kid` (default: the current key): equal inputs
        match, and the value tells nothing without the key."""
        key = self._by_id(kid) if kid else self.current
        return hmac.new(_index_key(key), f"{kind}:{normalized}".encode(), hashlib.sha256).hexdigest()

    def indexes(self, kind: str, normalized: str) -> list[str]:
        """The blind index under every configured key: what a lookup matches while a rotation
        has left some rows under an older key."""
        return [self.index(kind, normalized, kid) for kid in self.ids]


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


def new_key() -> str:
    """A fresh data key, as configuration holds it: base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_keys(text: str, where: str) -> DataKeys:
    """Keys separated by commas or new lines, the current key first; `where` names the source
    in the error (ValueError) that a key which is not base64 of 32 bytes gets."""
    keys: list[bytes] = []
    for n, item in enumerate(p.strip() for p in text.replace("\n", ",").split(",")):
        if not item:
            continue
        try:
            key = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{where} is not base64 (key {n + 1}): expected base64 of 32 random bytes") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"{where} decodes to {len(key)} bytes: expected {KEY_BYTES} (key {n + 1})")
        keys.append(key)
    if not keys:
        raise ValueError(f"{where} holds no key")
    return DataKeys(keys[0], tuple(keys[1:]))


def load_keys(data_dir: Path, env_value: str | None = None) -> DataKeys:
    """The data keys from PERKFLOW_DATA_KEY, else from data_dir/data.key (one key a line, the
    current first; made with one fresh key on first start)."""
    if env_value:
        return parse_keys(env_value, "PERKFLOW_DATA_KEY")
    path = data_dir / "data.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(new_key() + "\n")
        path.chmod(0o600)
    return parse_keys(path.read_text(), str(path))
