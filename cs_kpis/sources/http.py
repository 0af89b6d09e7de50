"""Shared HTTP plumbing for the vendor API readers (``<system>/api.py``).

The readers use dlt's ``RESTClient`` (``dlt.sources.helpers.rest_client``) on a session built by dlt's
retrying ``Client`` (``dlt.sources.helpers.requests.Client``): 429 and 5xx responses and connection
errors are retried a bounded number of times with exponential backoff, honouring ``Retry-After``;
every other error status fails at once. This module adds what dlt does not do for us:

- an error hook that turns HTTP errors into :class:`VendorApiError` / :class:`VendorAuthError`, whose
  messages carry the vendor, the status, the endpoint path and the vendor's error code (e.g. Stripe's
  ``rate_limit``, Salesforce's ``REQUEST_LIMIT_EXCEEDED``) and nothing else: no headers, no query string
  and never the response body, which some servers fill with the request's headers (a Basic-auth key
  in base64 included);
- :func:`redact`, which blanks every encoding of every credential: the raw value, its URL-encodings and
  its base64 forms at every byte alignment (so ``Basic base64(user:key)`` is caught from the key alone);
- reading credentials from environment variables, or from ``dlt.secrets`` under
  ``sources.<system>.<env var name in lowercase>`` (so ``SOURCES__BILLING__STRIPE_API_KEY`` or
  ``[sources.billing] stripe_api_key = "..."`` in ``.dlt/secrets.toml`` also work);
- :func:`iter_page_records`, which turns pages into :class:`RawRecord` s with a redacted ``origin``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus, urlsplit

import requests
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from dlt.sources.helpers.rest_client.redaction import sanitize_url
from requests.auth import AuthBase

from cs_kpis.sources.records import RawRecord

log = logging.getLogger(__name__)

RETRY_STATUS = (429, *range(500, 600))
"""statuses worth retrying: rate limiting and server-side failures"""

_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
"""what a vendor error code looks like; anything else in an error body is not trusted into a message"""
_MIN_B64_CORE = 8


class VendorApiError(requests.HTTPError):
    """A vendor API answered with an error status (after any retries).

    It subclasses ``requests.HTTPError`` and keeps ``response``, so dlt's retry logic can read the
    status code and the ``Retry-After`` header from it.
    """

    def __init__(self, message: str, *, source: str, status: int, path: str, response: Any = None):
        super().__init__(message, response=response)
        self.source = source
        self.status = status
        self.path = path

    def __str__(self) -> str:
        # the default would include the request/response objects' reprs; keep just the message
        return str(self.args[0])

    def __reduce__(self):  # keep the exception picklable without the response (which holds headers)
        return (_rebuild_error, (type(self), str(self.args[0]), self.source, self.status, self.path))


class VendorAuthError(VendorApiError):
    """The vendor rejected the credentials (401/403). Never retried."""


def _rebuild_error(cls: type[VendorApiError], message: str, source: str, status: int, path: str):
    return cls(message, source=source, status=status, path=path)


def _base64_cores(secret: bytes) -> set[str]:
    """The base64 text that encodes ``secret`` wherever it sits in a longer string (3 byte alignments), in the
    standard and the URL-safe alphabet; only the characters that depend on the secret alone."""
    out = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret).decode()
        start = 4 if offset else 0
        end = ((offset + len(secret)) // 3) * 4
        for core in {encoded[start:end], encoded if not offset else ""}:
            core = core.rstrip("=")
            if len(core) >= _MIN_B64_CORE:
                out |= {core, core.replace("+", "-").replace("/", "_")}
    return out


def secret_variants(secret: str) -> set[str]:
    """Every form in which ``secret`` may show up in text: raw, URL-encoded, JSON-escaped, base64."""
    if not secret:
        return set()
    raw = secret.encode()
    variants = {secret, quote(secret, safe=""), quote_plus(secret, safe=""), json.dumps(secret)[1:-1]}
    variants |= _base64_cores(raw)
    return {v for v in variants if v}


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every encoding of every non-empty secret in ``text`` with ``***`` (longest first)."""
    variants = set()
    for secret in secrets:
        variants |= secret_variants(secret)
    for variant in sorted(variants, key=len, reverse=True):
        text = text.replace(variant, "***")
    return text


def vendor_error_code(response: requests.Response) -> str | None:
    """The vendor's machine error code from an error body, if it has one that looks like a code.

    Stripe ``{"error": {"code"|"type"}}``, Salesforce ``[{"errorCode"}]``, Zendesk ``{"error": "..."}``;
    free text (messages, echoed headers) is never returned.
    """
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, list):
        body = body[0] if body else None
    if not isinstance(body, dict):
        return None
    candidates = [body.get("errorCode"), body.get("code")]
    err = body.get("error")
    if isinstance(err, dict):
        candidates += [err.get("code"), err.get("type")]
    else:
        candidates.append(err)
    for value in candidates:
        if isinstance(value, str) and _CODE.fullmatch(value):
            return value
    return None


def safe_url(url: str, secrets: Iterable[str] = ()) -> str:
    """The URL with credential-like query parameters and any known secret blanked out."""
    return redact(sanitize_url(url), secrets)


def error_hook(source: str, env_hint: str, secrets: Iterable[str]) -> Callable[..., None]:
    """A ``requests`` response hook raising a secret-free :class:`VendorApiError` on error statuses.

    Args:
        source: the vendor's display name, e.g. ``"Stripe"``.
        env_hint: what to check when credentials are rejected, e.g. ``"STRIPE_API_KEY"``.
        secrets: values that must never appear in a message (tokens, keys, passwords).

    The message is ``<source> API returned <status> for <path> (error code <code>)``: never the body.
    """
    secrets = tuple(s for s in secrets if s)

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        status = response.status_code
        if status < 400:
            return
        path = urlsplit(response.url).path
        if status in (401, 403):
            # no body here: some vendors echo a masked form of the key in it
            raise VendorAuthError(
                f"{source} API rejected the credentials ({status}) for {path}: check {env_hint}",
                source=source,
                status=status,
                path=path,
                response=response,
            )
        code = vendor_error_code(response)
        if code and redact(code, secrets) != code:  # a "code" that is a credential: not a code
            code = None
        retryable = " (retried if attempts remain)" if status in RETRY_STATUS else ""
        log.warning("%s API returned %s for %s%s", source, status, path, retryable)
        raise VendorApiError(
            f"{source} API returned {status} for {path}" + (f" (error code {code})" if code else ""),
            source=source,
            status=status,
            path=path,
            response=response,
        )

    return hook


def make_client(
    *,
    base_url: str,
    auth: AuthBase,
    headers: Mapping[str, str] | None = None,
    max_retries: int,
    backoff_base: float,
    max_retry_delay: float,
    timeout: float,
) -> RESTClient:
    """A dlt ``RESTClient`` whose session retries 429/5xx and connection errors, and nothing else.

    Args:
        max_retries: retries after the first attempt (so ``max_retries + 1`` attempts in all).
        backoff_base: the exponential backoff multiplier in seconds (``base * 2**(attempt-1)``).
        max_retry_delay: upper bound of one wait, also for ``Retry-After``; keep it above the
            vendor's usual ``Retry-After`` or the header gets cut short.
        timeout: per-request timeout in seconds.
    """
    session = Client(
        request_timeout=timeout,
        raise_for_status=False,  # our error hook raises instead, with a safe message
        status_codes=RETRY_STATUS,
        request_max_attempts=max_retries + 1,
        request_backoff_factor=backoff_base,
        request_max_retry_delay=max_retry_delay,
        respect_retry_after_header=True,
    ).session
    return RESTClient(base_url=base_url, headers=dict(headers or {}), auth=auth, session=session)


def iter_pages(
    client: RESTClient,
    path: str,
    *,
    params: Mapping[str, Any] | None,
    paginator: BasePaginator,
    data_selector: str,
    hook: Callable[..., None],
    secrets: Iterable[str],
) -> Iterator[tuple[list[Any], str]]:
    """Yield ``(objects, origin)`` for every page, ``origin`` being the page URL without secrets."""
    secrets = tuple(secrets)
    for page in client.paginate(
        path,
        params=dict(params or {}),
        paginator=paginator,
        data_selector=data_selector,
        hooks={"response": [hook]},
    ):
        # the request object is reused for the next page by then, so take the URL from the response
        yield list(page), safe_url(page.response.url, secrets)


def iter_page_records(pages: Iterable[tuple[list[Any], str]]) -> Iterator[RawRecord]:
    """Turn ``(objects, origin)`` pages into :class:`RawRecord` s (position = index within the page)."""
    for objects, origin in pages:
        for position, obj in enumerate(objects):
            if isinstance(obj, dict):
                yield RawRecord(obj, origin, position)
            else:
                # not an object: keep it, unparsed, so the row accounting still holds
                yield RawRecord(None, origin, position, raw_text=repr(obj), error="not a JSON object")


def read_setting(
    env_name: str, system: str, *, required: bool = True, default: str | None = None
) -> str | None:
    """Read one setting from the environment, else from ``dlt.secrets``, else ``default``.

    The dlt key is ``sources.<system>.<env_name lowercased>``, e.g. ``sources.billing.stripe_api_key``.

    Raises:
        ValueError: when ``required`` and the setting is nowhere to be found (the message names the
            variable, never a value).
    """
    value = os.environ.get(env_name)
    if not value:
        value = _from_dlt(f"sources.{system}.{env_name.lower()}")
    if not value:
        value = default
    if required and not value:
        raise ValueError(
            f"{env_name} is not set: export it, or set sources.{system}.{env_name.lower()} "
            "in .dlt/secrets.toml"
        )
    return value


def _from_dlt(key: str) -> str | None:
    try:
        import dlt

        value = dlt.secrets.get(key)
    except Exception:  # noqa: BLE001 - no dlt config available is the same as "not set"
        return None
    return str(value) if value else None


@dataclass(frozen=True, kw_only=True)
class VendorApiConfig:
    """What every vendor API config shares: retries, back-off, timeout, the incremental lookback, and
    ``from_env``. A subclass sets ``SYSTEM`` (the dlt secrets section), ``ENV_PREFIX`` (``STRIPE``: the
    lookback is read from ``STRIPE_LOOKBACK_SECONDS``) and ``settings_from_env`` (its own credentials).
    Secrets are declared ``field(repr=False)`` so they never show in ``repr``, logs or exception messages."""

    SYSTEM: ClassVar[str] = ""
    ENV_PREFIX: ClassVar[str] = ""

    max_retries: int = 4
    """retries of a 429/5xx/connection error after the first attempt"""
    backoff_base: float = 0.5
    """seconds; the n-th retry waits ``backoff_base * 2**(n-1)`` unless ``Retry-After`` says otherwise"""
    max_retry_delay: float = 60.0
    lookback_seconds: int = 3600
    """incremental runs ask for changes since the last cursor minus this much, for rows the vendor
    commits late (the merge on the primary key drops the overlap); env <ENV_PREFIX>_LOOKBACK_SECONDS"""
    timeout: float = 60.0

    def client_settings(self) -> dict[str, Any]:
        """The keyword arguments of ``make_client`` this config sets: retries, back-off, timeout."""
        return {"max_retries": self.max_retries, "backoff_base": self.backoff_base,
                "max_retry_delay": self.max_retry_delay, "timeout": self.timeout}

    @classmethod
    def settings_from_env(cls, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The subclass's own settings (credentials, URL) from the environment or dlt secrets."""
        raise NotImplementedError

    @classmethod
    def from_env(cls, **overrides: Any) -> Any:
        """Build from the environment or dlt secrets (``read_setting``); keyword arguments override any
        field (e.g. ``page_size``)."""
        values = cls.settings_from_env(overrides)
        lookback = read_setting(f"{cls.ENV_PREFIX}_LOOKBACK_SECONDS", cls.SYSTEM, required=False)
        if lookback:
            values["lookback_seconds"] = int(lookback)
        values.update(overrides)
        return cls(**values)
