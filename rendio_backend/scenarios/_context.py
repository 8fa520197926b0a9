"""What every flow shares: its options, one connection pool, guests, the model to use and
waiting for a job, all through the public facades (so over HTTP, as the app does)."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import av
import httpx

from ..admin import AsyncRendioAdmin
from ..client import AsyncRendioClient
from ..config import RendioConfig
from ..errors import ConfigurationError
from ..models import JobStatus, Model, VideoStatus
from ._report import Skip

# (device id) -> a fresh DeviceCheck token for that device. Only a real iPhone makes
# real ones; the local stack's fake DeviceCheck reads the device from the token.
DeviceTokens = Callable[[str], str]
# (Apple user id `sub`, raw nonce) -> an id_token as Sign in with Apple returns it.
AppleIdTokens = Callable[[str, str], str]


class StoreKitSigning(Protocol):
    """Signs StoreKit 2 data as the App Store does (the local stack's test chain)."""

    def sign_transaction(self, product_id: str, *, transaction_id: str | None = ...,
                         app_account_token: uuid.UUID | str | None = ...,
                         revocation_date: int | None = ...) -> str: ...

    def sign_notification(self, notification_type: str, *,
                          signed_transaction: str | None = ...,
                          notification_uuid: uuid.UUID | str | None = ...) -> str: ...


@dataclass(frozen=True)
class SimulationOptions:
    """How the flows run. The signers are injected: product code never holds Apple's
    keys, so without them the flows needing them are skipped (with the reason)."""

    users: int = 5                  # guests of `load`
    concurrency: int = 4            # requests in flight at once (load, duplicates)
    job_timeout: float = 30.0       # seconds a generation may take to finish
    poll_interval: float = 0.25     # seconds between two video_status calls
    # The fake providers choose outcomes by prompt directives. Against a real provider
    # pass a prompt it refuses (failure_prompt) and a plain one (slow_prompt).
    failure_prompt: str = "A storm over a paper city [fake:fail]"
    slow_prompt: str = "A glacier calving at dawn [fake:latency-ms=1500]"
    prompt: str = "A paper boat drifting down a rainy street, cinematic"
    device_tokens: DeviceTokens | None = None
    storekit: StoreKitSigning | None = None
    apple_id_tokens: AppleIdTokens | None = None
    # The App Store product `purchase` buys (made with `product_credits` if missing).
    product_id: str = "com.rendio.credits.simulation"
    product_credits: int = 25
    # Called with a short description of what a flow is doing (progress display).
    on_step: Callable[[str], None] | None = None


class Context:
    """One flow's connections (closed by `close`), its admin and the guests it makes."""

    def __init__(self, config: RendioConfig, options: SimulationOptions) -> None:
        self.config = config
        self.options = options
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            limits=httpx.Limits(max_connections=max(20, options.concurrency * 4)))
        try:
            self.admin = AsyncRendioAdmin(config, http_client=self.http)
        except ConfigurationError as exc:
            raise Skip(f"needs the service role key ({exc.message})") from None
        self._model: Model | None = None

    def say(self, message: str) -> None:
        if self.options.on_step is not None:
            self.options.on_step(message)

    async def close(self) -> None:
        await self.http.aclose()

    def client(self) -> AsyncRendioClient:
        """A signed-out app client sharing the pool."""
        return AsyncRendioClient(self.config, http_client=self.http)

    async def guest(self, credits: int = 0) -> AsyncRendioClient:
        """A new anonymous user; `credits` given by an admin adjustment (the service
        role), so flows other than onboarding need no DeviceCheck."""
        client = self.client()
        await client.sign_in_anonymously()
        if credits:
            await self.admin.add_credits(client.user_id, credits)
        return client

    async def model(self) -> Model:
        """The cheapest available text-to-video model (the flows pay its cost)."""
        if self._model is None:
            models = [m for m in await self.client().list_models()
                      if m.is_available and m.category == "text-to-video"]
            if not models:
                raise Skip("no text-to-video model is available (rendio models seed)")
            self._model = min(models, key=lambda m: (m.cost_per_generation, m.name))
        return self._model

    async def wait_for(self, client: AsyncRendioClient, job_id: uuid.UUID,
                       timeout: float | None = None) -> VideoStatus:
        """The job's status once final, or its last status when `timeout` ran out."""
        deadline = time.monotonic() + (timeout or self.options.job_timeout)
        while True:
            status = await client.video_status(job_id)
            if status.status.is_terminal or time.monotonic() >= deadline:
                return status
            await asyncio.sleep(self.options.poll_interval)

    async def fetch(self, url: str) -> bytes:
        """GET a signed URL with no credentials, as a video player would."""
        response = await self.http.get(url)
        response.raise_for_status()
        return response.content


def describe(status: VideoStatus) -> str:
    if status.status is JobStatus.FAILED and status.failure is not None:
        return f"failed ({status.failure.code})"
    return status.status.value


def decode_video(data: bytes) -> str:
    """'N frames, WxH' of an MP4, decoded with PyAV (ValueError when it is not one)."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            return f"{frames} frames, {stream.width}x{stream.height}"
    except (av.error.FFmpegError, IndexError) as exc:
        raise ValueError(f"not a playable video: {exc}") from None


def decode_image(data: bytes) -> str:
    """'WxH' of a JPEG thumbnail, decoded with PyAV."""
    try:
        with av.open(io.BytesIO(data), mode="r", format="image2pipe") as container:
            frame = next(container.decode(video=0))
            return f"{frame.width}x{frame.height}"
    except (av.error.FFmpegError, StopIteration) as exc:
        raise ValueError(f"not an image: {exc}") from None


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
