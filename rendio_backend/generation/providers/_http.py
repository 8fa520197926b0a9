"""What the HTTP adapters share: one httpx client, and how an answer becomes an error.

Classification (`error_for_status`): 404/410 on a submission mean the model is gone
(`ModelUnavailable`); 408, 425, 429 and 5xx are transient (`ProviderError(retryable=True)`),
as are timeouts and connection failures; any other 4xx is permanent.
"""

from __future__ import annotations

from typing import Any

import httpx

from ...config import RendioConfig
from ...errors import ConfigurationError, ModelUnavailable, ProviderError, RendioError

_RETRYABLE = frozenset({408, 425, 429})
_GONE = frozenset({404, 410})
# Enough of an error body to tell what went wrong, not a whole HTML page.
_TEXT_LIMIT = 500


def error_text(response: httpx.Response) -> str:
    """A short, single-line excerpt of an error answer's body."""
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""
    return " ".join(text.split())[:_TEXT_LIMIT]


def error_for_status(provider: str, status: int, text: str, *, submit: bool,
                     model_id: str | None = None) -> RendioError:
    """The error for a provider's non-2xx answer (see the module docstring)."""
    details: dict[str, Any] = {"provider": provider, "status": status}
    if model_id is not None:
        details["provider_model_id"] = model_id
    message = f"{provider} answered {status}" + (f": {text}" if text else "")
    if submit and status in _GONE:
        return ModelUnavailable(message, details=details)
    if status in _RETRYABLE or status >= 500:
        return ProviderError(message, retryable=True, details=details)
    return ProviderError(message, retryable=False, details=details)


def transport_error(provider: str, exc: httpx.HTTPError) -> ProviderError:
    """A timeout or connection failure: transient (the provider may not have seen it)."""
    return ProviderError(f"{provider} could not be reached: {type(exc).__name__}: {exc}",
                         retryable=True, details={"provider": provider})


class HttpAdapter:
    """Base of the adapters that speak HTTP: owns its client unless given one."""

    name: str

    def __init__(self, config: RendioConfig, http: httpx.AsyncClient | None) -> None:
        self.config = config
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            follow_redirects=False)

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    def _key(self, value: str | None, setting: str) -> str:
        if not value:
            raise ConfigurationError(f"{setting} is not set; {self.name} needs it",
                                     code=f"missing_{setting.lower()}")
        return value

    async def _send(self, method: str, url: str, *, submit: bool = False,
                    model_id: str | None = None, ok: frozenset[int] = frozenset(),
                    **kwargs: Any) -> httpx.Response:
        """The answer to one request; a non-2xx answer not in `ok` raises its error."""
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from exc
        if response.is_success or response.status_code in ok:
            return response
        error = error_for_status(self.name, response.status_code, error_text(response),
                                 submit=submit, model_id=model_id)
        retry_after = response.headers.get("retry-after", "")
        if retry_after.isdigit():  # seconds; a backoff should wait at least that long
            error.details["retry_after"] = int(retry_after)
        raise error


def json_object(provider: str, response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer; anything else is the provider's fault."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderError(f"{provider} answered {response.status_code} without a JSON "
                            f"object: {error_text(response)}", retryable=True,
                            details={"provider": provider, "status": response.status_code})
    return body
