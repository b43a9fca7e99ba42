"""TAccount passwords as K8SFramework stores them: bcrypt of the password's hex SHA-1, in the ``$2a$`` form (TarsWeb's
Node bcrypt refuses ``$2b$``). Shared by the operator's admission webhook and the web console."""

from __future__ import annotations

import hashlib


def sha1_hex(password: str) -> bytes:
    return hashlib.sha1(password.encode()).hexdigest().encode()


def hash_password(password: str) -> str:
    """K8SFramework's stored form: bcrypt of the hex SHA-1 of the password."""
    import bcrypt  # only the webhook and the console need it

    return str(bcrypt.hashpw(sha1_hex(password), bcrypt.gensalt(prefix=b"2a")).decode())


def check_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a stored ``bcryptPassword`` (``$2a$`` or ``$2b$``); False for a malformed hash."""
    import bcrypt

    try:
        return bool(bcrypt.checkpw(sha1_hex(password), hashed.encode()))
    except ValueError:
        return False
