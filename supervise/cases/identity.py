"""Secrets a case carries: the citizen's access code (查询码) and the reporter's identity."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet

# 32 symbols, none of 0/O/1/I: easy to read aloud and to type on a phone.
ACCESS_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
ACCESS_CODE_LENGTH = 12  # 12 × 5 bits = 60 random bits


TRACKING_SYMBOLS = 10  # 50 random bits: a guessed number hits a case about once in 10⁹ tries


def new_tracking_no() -> str:
    """查询编号 `MS-K7QP3-XWA9M`: random, so nobody can walk the numbers to find or lock out other
    people's cases; readable over the phone, in the access code's alphabet. Staff also have the
    case's register number (`Case.register_no`)."""
    raw = "".join(secrets.choice(ACCESS_CODE_ALPHABET) for _ in range(TRACKING_SYMBOLS))
    return f"MS-{raw[:5]}-{raw[5:]}"


def new_access_code() -> str:
    raw = "".join(secrets.choice(ACCESS_CODE_ALPHABET) for _ in range(ACCESS_CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, ACCESS_CODE_LENGTH, 4))


def access_code_for_key(secret: str, key: str) -> str:
    """The access code of a submission made with an idempotency key: the same for every replay of
    that key (so a retried form shows the code that works), unguessable without the server's key."""
    digest = int.from_bytes(hmac.new(secret.encode(), f"access-code:{key}".encode(), hashlib.sha256).digest())
    raw = ""
    for _ in range(ACCESS_CODE_LENGTH):
        digest, index = divmod(digest, len(ACCESS_CODE_ALPHABET))
        raw += ACCESS_CODE_ALPHABET[index]
    return "-".join(raw[i : i + 4] for i in range(0, ACCESS_CODE_LENGTH, 4))


def normalise_access_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_access_code(key: str, tracking_no: str, code: str) -> str:
    """Keyed hash bound to the tracking number: a leaked table cannot be brute-forced offline."""
    message = f"{tracking_no}:{normalise_access_code(code)}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def access_code_matches(key: str, tracking_no: str, code: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_access_code(key, tracking_no, code), stored_hash)


def normalise_phone(phone: str) -> str:
    """+86 138-1234-5678, 8613812345678 and 13812345678 are one number."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def reporter_hash(secret: str, phone: str | None) -> str | None:
    """The same reporter across cases, without the number: an HMAC under the server's key, so a
    leaked table cannot be turned back into phone numbers by hashing all 10⁹ of them."""
    if not phone or not normalise_phone(phone):
        return None
    message = f"reporter-phone:{normalise_phone(phone)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class IdentityBox:
    """Encrypts and decrypts reporter names and phone numbers (Fernet: AES + HMAC)."""

    def __init__(self, key: str):
        self._fernet = Fernet(key.encode() if isinstance(key, str) else key)

    def seal(self, value: str | None) -> bytes | None:
        return self._fernet.encrypt(value.encode()) if value else None

    def open(self, token: bytes | None) -> str | None:
        return self._fernet.decrypt(token).decode() if token else None


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 欧阳娜娜 → 欧***."""
    if not name:
        return None
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138****5678."""
    if not phone:
        return None
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
