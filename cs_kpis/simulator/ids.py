"""Vendor-shaped identifiers: Salesforce 18-character ids, Stripe prefixed ids, Segment message ids."""

import hashlib

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SF_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


_B62_PAIRS = [_B62[r % 62] + _B62[r // 62] for r in range(62 * 62)]
"""two base-62 digits at a time, least significant first (ids are made by the million)"""


def _b62(digest: bytes, length: int) -> str:
    """``length`` base-62 digits of the digest, least significant first."""
    n = int.from_bytes(digest, "big")
    out = []
    for _ in range(length // 2):
        n, r = divmod(n, 3844)
        out.append(_B62_PAIRS[r])
    if length % 2:
        out.append(_B62[n % 62])
    return "".join(out)


def salesforce_18(id15: str) -> str:
    """Salesforce's case-safe 18-character form: three checksum chars encode the case of the 15."""
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        flags = sum(1 << i for i, c in enumerate(chunk) if c.isupper())
        suffix += _SF_SUFFIX[flags]
    return id15 + suffix


class IdFactory:
    """Deterministic ids for one seed: the same (kind, number) always gives the same id."""

    def __init__(self, seed: int):
        self.seed = seed

    def _digest(self, kind: str, n: int | str) -> bytes:
        return hashlib.blake2b(f"{self.seed}:{kind}:{n}".encode(), digest_size=16).digest()

    def salesforce(self, prefix: str, n: int) -> str:
        # prefix (3) + instance-ish "5g" + 10 random base62 chars = 15, then the checksum
        return salesforce_18(prefix + "5g" + _b62(self._digest(prefix, n), 10))

    def stripe(self, prefix: str, n: int | str, length: int = 14) -> str:
        return f"{prefix}_{_b62(self._digest(prefix, n), length)}"

    def workspace(self, n: int) -> str:
        return "ws_" + self._digest("ws", n).hex()[:12]

    def product_user(self, account_n: int, k: int) -> str:
        return "u" + self._digest("acct", account_n).hex()[:8] + f"{k:03d}"
