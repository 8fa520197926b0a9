"""The Apple routes end to end: through the gateway at /functions/v1 with real tokens from
the local Auth, DeviceCheck answered by the stack's fake over HTTP, and StoreKit data
signed by the stack's test chain and checked by Apple's real SignedDataVerifier.

Every test ends with an empty `verify_ledger()`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from rendio_backend import (
    CreditReason,
    DeviceCheckResult,
    RendioAdmin,
    RendioClient,
    TransactionAlreadyUsed,
)
from rendio_backend.apple import DeviceCheckClient
from rendio_backend.local.fakes.devicecheck import (
    FAKE_KEY_ID,
    FAKE_TEAM_ID,
    NO_BITS,
    FakeDeviceCheck,
    fake_device_token,
    private_key_pem,
)
from rendio_backend.local.fakes.storekit import SigningChain, StoreKitSigner, new_transaction_id
from tests.support.stack import RunningStack, SqlRunner


@dataclass
class Guest:
    client: RendioClient
    user_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def balance(self) -> int:
        return self.client.get_balance().credits_remaining


@pytest.fixture(scope="module")
def admin(stack: RunningStack) -> Iterator[RendioAdmin]:
    with RendioAdmin(stack.config.rendio_config()) as admin:
        yield admin


@pytest.fixture(autouse=True)
def sound_ledger(admin: RendioAdmin) -> Iterator[None]:
    yield
    assert admin.verify_ledger() == []


@pytest.fixture
def api(stack: RunningStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{stack.config.api_url}/functions/v1", timeout=30,
                      headers={"apikey": stack.config.publishable_key}) as client:
        yield client


@pytest.fixture
def guests(stack: RunningStack) -> Iterator[list[Guest]]:
    made: list[Guest] = []
    yield made
    for guest in made:
        guest.client.close()


def new_guest(stack: RunningStack, guests: list[Guest]) -> Guest:
    client = RendioClient(stack.config.rendio_config())
    session = client.sign_in_anonymously()
    guest = Guest(client, str(session.user_id), session.access_token)
    guests.append(guest)
    return guest


@pytest.fixture
def signer(stack: RunningStack) -> StoreKitSigner:
    return StoreKitSigner.for_stack(stack.config)


@pytest.fixture
def product(sql: SqlRunner) -> str:
    """A catalog product worth 25 credits."""
    product_id = f"com.rendio.credits.{secrets.token_hex(4)}"
    sql("insert into public.iap_products (product_id, credits) values (%s, 25)", product_id)
    return product_id


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


def _check(api: httpx.Client, guest: Guest, device_id: str, token: str) -> httpx.Response:
    return api.post("/device/check", json={"device_id": device_id, "device_token": token},
                    headers=guest.headers)


def _bits(stack: RunningStack, token: str) -> tuple[bool, bool]:
    async def query() -> tuple[bool, bool]:
        client = DeviceCheckClient.from_config(stack.config.rendio_config())
        try:
            bits = await client.query_two_bits(token)
        finally:
            await client.aclose()
        return bits.bit0, bits.bit1

    return asyncio.run(query())


# --- device/check ----------------------------------------------------------------------
def test_guest_onboarding_then_reinstall_gets_nothing(
    api: httpx.Client, stack: RunningStack, guests: list[Guest]
) -> None:
    phone = f"phone-{uuid.uuid4()}"
    first = new_guest(stack, guests)
    answer = _check(api, first, "idfv-1-" + phone, fake_device_token(phone))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"granted": True, "credits_remaining": 10}
    assert first.balance() == 10
    assert _bits(stack, fake_device_token(phone)) == (True, False)
    # The app asks again on the next launch: nothing more.
    again = _check(api, first, "idfv-1-" + phone, fake_device_token(phone))
    assert again.json() == {"granted": False, "credits_remaining": 10}

    # Reinstall: a new anonymous user and a new identifierForVendor, the same phone.
    reinstalled = new_guest(stack, guests)
    result = reinstalled.client.check_device("idfv-2-" + phone, fake_device_token(phone))
    assert result == DeviceCheckResult(granted=False, credits_remaining=0)
    assert reinstalled.balance() == 0


def test_a_second_user_on_a_bound_device_gets_nothing(
    api: httpx.Client, stack: RunningStack, guests: list[Guest], admin: RendioAdmin
) -> None:
    device_id = f"idfv-{uuid.uuid4()}"
    owner, other = new_guest(stack, guests), new_guest(stack, guests)
    assert _check(api, owner, device_id, fake_device_token()).json()["granted"] is True
    # Bit 0 of this token's device is unset: only the binding in the database refuses.
    token = fake_device_token()
    answer = _check(api, other, device_id, token)
    assert answer.json() == {"granted": False, "credits_remaining": 0}
    assert _bits(stack, token) == (False, False)
    assert str(admin.get_user_by_device_id(device_id).id) == owner.user_id


def test_a_claim_whose_bit_was_never_set_is_finished(
    api: httpx.Client, stack: RunningStack, guests: list[Guest], admin: RendioAdmin
) -> None:
    # As if a first call had granted and then failed to reach Apple for bit 0.
    guest = new_guest(stack, guests)
    device_id, token = f"idfv-{uuid.uuid4()}", fake_device_token()
    assert admin.grant_initial_credits(guest.user_id, device_id) is True
    answer = _check(api, guest, device_id, token)
    assert answer.json() == {"granted": False, "credits_remaining": 10}
    assert _bits(stack, token) == (True, False)


@pytest.mark.parametrize(("body", "field"), [
    ({"device_id": "idfv", "device_token": "not base64!"}, "device_token"),
    ({"device_id": "idfv", "device_token": "c29tZQ"}, "device_token"),  # bad padding
    ({"device_id": "idfv", "device_token": ""}, "device_token"),
    ({"device_id": "", "device_token": "c29tZQ=="}, "device_id"),
    ({"device_id": "x" * 256, "device_token": "c29tZQ=="}, "device_id"),
    ({"device_token": "c29tZQ=="}, "device_id"),
])
def test_invalid_device_check_requests_are_400(
    api: httpx.Client, stack: RunningStack, guests: list[Guest], body: dict[str, Any],
    field: str
) -> None:
    guest = new_guest(stack, guests)
    answer = api.post("/device/check", json=body, headers=guest.headers)
    assert answer.status_code == 400, answer.text
    assert {"code": "invalid_request", "field": field}.items() <= _error(answer).items()
    assert guest.balance() == 0


def test_apple_unreachable_is_503_and_grants_nothing(
    stack: RunningStack, guests: list[Guest]
) -> None:
    from rendio_backend.api import create_app

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = stack.config.rendio_config().model_copy(
        update={"apple_devicecheck_url": f"http://127.0.0.1:{port}"})
    app = create_app(config)
    guest = new_guest(stack, guests)
    device_id, token = f"idfv-{uuid.uuid4()}", fake_device_token()

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.post("/device/check", headers=guest.headers,
                                         json={"device_id": device_id, "device_token": token})
        finally:
            await app.state.runtime.aclose()

    answer = asyncio.run(call())
    assert answer.status_code == 503, answer.text
    assert _error(answer)["code"] == "upstream_unavailable"
    assert answer.headers["Retry-After"] == "5"
    assert guest.balance() == 0
    # Apple back: the same request grants.
    assert guest.client.check_device(device_id, token).granted is True


def test_the_apple_routes_need_a_user_token(api: httpx.Client, stack: RunningStack) -> None:
    expired = stack.user_jwt(str(uuid.uuid4()), expires_in=-60)
    for headers in ({}, {"Authorization": f"Bearer {expired}"},
                    {"Authorization": f"Bearer {stack.config.anon_key}"}):
        for path, body in (("/device/check", {"device_id": "d", "device_token": "c29tZQ=="}),
                           ("/update-credits", {"signed_transaction": "x.y.z"})):
            answer = api.post(path, json=body, headers=headers)
            assert answer.status_code == 401, (path, answer.text)
            assert _error(answer)["code"] == "unauthorized"


# --- the fake DeviceCheck, as Apple answers ----------------------------------------------
def _fake_post(stack: RunningStack, endpoint: str, body: dict[str, Any],
               token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.post(f"{stack.config.api_url}/_fake/apple/devicecheck/v1/{endpoint}",
                      json=body, headers=headers)


def _apple_jwt(stack: RunningStack, *, key: Any = None, kid: str = FAKE_KEY_ID,
               iss: str = FAKE_TEAM_ID, age: int = 0) -> str:
    return jwt.encode({"iss": iss, "iat": int(time.time()) - age},
                      key or private_key_pem(stack.config), algorithm="ES256",
                      headers={"kid": kid})


def test_the_fake_devicecheck_checks_the_jwt_and_keeps_bits(stack: RunningStack) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    token = fake_device_token()
    body = {"device_token": token, "transaction_id": str(uuid.uuid4()),
            "timestamp": int(time.time() * 1000)}
    good = _apple_jwt(stack)
    never = _fake_post(stack, "query_two_bits", body, good)
    assert (never.status_code, never.text) == (200, NO_BITS)
    assert _fake_post(stack, "validate_device_token", body, good).status_code == 200

    missing = _fake_post(stack, "query_two_bits", body, None)
    assert missing.status_code == 400 and "authorization" in missing.text
    for bad in (_apple_jwt(stack, key=ec.generate_private_key(ec.SECP256R1())),
                _apple_jwt(stack, kid="OTHERKEY01"), _apple_jwt(stack, iss="OTHERTEAM1"),
                _apple_jwt(stack, age=3700), "not.a.jwt",
                jwt.encode({"iss": FAKE_TEAM_ID, "iat": int(time.time())}, "s" * 32,
                           algorithm="HS256", headers={"kid": FAKE_KEY_ID})):
        refused = _fake_post(stack, "query_two_bits", body, bad)
        assert (refused.status_code, refused.text) == (401, "Unable to verify authorization token")

    assert _fake_post(stack, "update_two_bits", {**body, "bit1": True}, good).status_code == 200
    # Another token of the same device sees the bits; a restart keeps them.
    same_device = base64.b64decode(token).split(b":")[0].decode()
    again = {**body, "device_token": fake_device_token(same_device)}
    answer = _fake_post(stack, "query_two_bits", again, good).json()
    assert answer["bit0"] is False and answer["bit1"] is True
    assert answer["last_update_time"] == time.strftime("%Y-%m", time.gmtime())
    restarted = FakeDeviceCheck(stack.config)
    assert restarted.query(same_device.encode()) == answer

    for broken, message in (({**body, "device_token": "%%%"}, "device token"),
                            ({**body, "timestamp": "now"}, "time stamp"),
                            ({**body, "transaction_id": 7}, "transaction ID")):
        refused = _fake_post(stack, "query_two_bits", broken, good)
        assert refused.status_code == 400 and message in refused.text
    no_bits = _fake_post(stack, "update_two_bits", body, good)
    assert no_bits.status_code == 400 and "bits" in no_bits.text


# --- update-credits ------------------------------------------------------------------------
def _redeem(api: httpx.Client, guest: Guest, signed: str) -> httpx.Response:
    return api.post("/update-credits", json={"signed_transaction": signed},
                    headers=guest.headers)


def test_purchase_replay_and_unknown_product(
    api: httpx.Client, stack: RunningStack, guests: list[Guest], signer: StoreKitSigner,
    product: str
) -> None:
    guest = new_guest(stack, guests)
    tx = new_transaction_id()
    signed = signer.sign_transaction(product, transaction_id=tx,
                                     app_account_token=guest.user_id)
    first = _redeem(api, guest, signed)
    assert first.status_code == 200, first.text
    assert first.json() == {"transaction_id": tx, "product_id": product, "credits_added": 25,
                            "credits_remaining": 25, "already_processed": False}
    # The same JWS again, and the same transaction signed again later: no second credit.
    for replay in (signed, signer.sign_transaction(product, transaction_id=tx)):
        again = _redeem(api, guest, replay)
        assert again.status_code == 200
        assert again.json()["already_processed"] is True
        assert again.json()["credits_remaining"] == 25 and again.json()["credits_added"] == 0
    # Through the library, a purchase of two.
    double = guest.client.redeem_transaction(signer.sign_transaction(product, quantity=2))
    assert (double.credits_added, double.credits_remaining) == (50, 75)

    unknown = _redeem(api, guest, signer.sign_transaction("com.rendio.credits.nope"))
    assert unknown.status_code == 422
    assert {"code": "unknown_product",
            "product_id": "com.rendio.credits.nope"}.items() <= _error(unknown).items()
    # Another user presenting the same transaction.
    thief = new_guest(stack, guests)
    stolen = _redeem(api, thief, signer.sign_transaction(product, transaction_id=tx))
    assert stolen.status_code == 409 and _error(stolen)["code"] == "transaction_already_used"
    with pytest.raises(TransactionAlreadyUsed):
        thief.client.redeem_transaction(signer.sign_transaction(product, transaction_id=tx))
    assert (guest.balance(), thief.balance()) == (75, 0)


def _forged_jws(signer: StoreKitSigner, product: str) -> dict[str, str]:
    trusted = signer.sign_transaction(product)
    header, _, signature = trusted.split(".")
    payload = signer.transaction_payload(product, productId=product, quantity=100)
    tampered = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return {
        # A chain that is not rooted in the trusted root (same shape, own root).
        "untrusted chain": StoreKitSigner(SigningChain.generate(),
                                          bundle_id=signer.bundle_id).sign_transaction(product),
        "tampered payload": f"{header}.{tampered}.{signature}",
        "alg none": jwt.encode(payload, "", algorithm="none",
                               headers={"x5c": signer.chain.x5c}),
        "not a jws": "definitely-not-a-jws",
    }


def test_forged_and_foreign_transactions_are_400(
    api: httpx.Client, stack: RunningStack, guests: list[Guest], signer: StoreKitSigner,
    product: str
) -> None:
    guest = new_guest(stack, guests)
    cases = {name: (jws, "invalid_signature")
             for name, jws in _forged_jws(signer, product).items()}
    cases["other app"] = (StoreKitSigner(signer.chain, bundle_id="com.other.app")
                          .sign_transaction(product), "wrong_app")
    cases["production"] = (StoreKitSigner(signer.chain, bundle_id=signer.bundle_id,
                                          environment="Production").sign_transaction(product),
                           "wrong_environment")
    cases["another account"] = (signer.sign_transaction(product,
                                                        app_account_token=uuid.uuid4()),
                                "app_account_token")
    for name, (jws, reason) in cases.items():
        answer = _redeem(api, guest, jws)
        assert answer.status_code == 400, (name, answer.text)
        error = _error(answer)
        assert (error["code"], error["field"], error["reason"]) == (
            "invalid_request", "signed_transaction", reason), name
    revoked = _redeem(api, guest, signer.sign_transaction(
        product, revocation_date=int(time.time() * 1000)))
    assert revoked.status_code == 422 and _error(revoked)["code"] == "transaction_revoked"
    assert guest.balance() == 0


# --- apple/notifications -----------------------------------------------------------------
def _notify(stack: RunningStack, signed_payload: str) -> httpx.Response:
    # Apple sends neither an apikey nor a user token: the signature is the credential.
    return httpx.post(f"{stack.config.api_url}/functions/v1/apple/notifications",
                      json={"signedPayload": signed_payload}, timeout=30)


def test_refund_takes_credits_back_once_never_below_zero(
    api: httpx.Client, stack: RunningStack, guests: list[Guest], signer: StoreKitSigner,
    product: str, admin: RendioAdmin
) -> None:
    guest = new_guest(stack, guests)
    tx = new_transaction_id()
    purchase = signer.sign_transaction(product, transaction_id=tx)
    assert _redeem(api, guest, purchase).json()["credits_remaining"] == 25
    admin.deduct_credits(guest.user_id, 20, reason=CreditReason.ADMIN_ADJUSTMENT)  # spent

    refund_id = uuid.uuid4()
    refund = signer.sign_notification(
        "REFUND", notification_uuid=refund_id,
        signed_transaction=signer.sign_transaction(product, transaction_id=tx,
                                                   revocation_date=int(time.time() * 1000)))
    answer = _notify(stack, refund)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": True, "already_processed": False,
                             "outcome": "refunded"}
    assert guest.balance() == 0
    row = admin.credit_history(guest.user_id, limit=1).items[0]
    assert (row.reason, row.change, row.transaction_id) == (CreditReason.IAP_REFUND, -5, tx)
    assert _shortfall(stack, tx) == 20  # the credits already spent

    # Apple delivers it again: a no-op.
    repeat = _notify(stack, refund)
    assert repeat.json() == {"received": True, "already_processed": True,
                             "outcome": "refunded"}
    # A second REFUND for the same purchase (another UUID) takes nothing more.
    second = _notify(stack, signer.sign_notification("REFUND", signed_transaction=purchase))
    assert second.json()["outcome"] == "already_refunded"
    assert guest.balance() == 0
    # The refunded purchase cannot be redeemed again, as it is now or as it was.
    assert _redeem(api, guest, purchase).json()["already_processed"] is True
    assert guest.balance() == 0


def _shortfall(stack: RunningStack, transaction_id: str) -> int:
    import psycopg

    with psycopg.connect(stack.config.superuser_db_url) as conn:
        row = conn.execute("select shortfall from public.quota_log where transaction_id = %s "
                           "and reason = 'iap_refund'", (transaction_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_revoke_unknown_purchases_and_other_types(
    api: httpx.Client, stack: RunningStack, guests: list[Guest], signer: StoreKitSigner,
    product: str
) -> None:
    guest = new_guest(stack, guests)
    purchase = signer.sign_transaction(product)
    _redeem(api, guest, purchase)
    revoke = signer.sign_notification("REVOKE", signed_transaction=purchase)

    async def deliver_five_times_at_once() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(
                client.post(f"{stack.config.api_url}/functions/v1/apple/notifications",
                            json={"signedPayload": revoke}) for _ in range(5)))

    answers = [r.json() for r in asyncio.run(deliver_five_times_at_once())]
    assert sorted(a["already_processed"] for a in answers) == [False] + [True] * 4
    assert {a["outcome"] for a in answers} == {"refunded"} and guest.balance() == 0

    never_credited = signer.sign_transaction(product)
    unknown = _notify(stack, signer.sign_notification("REFUND",
                                                      signed_transaction=never_credited))
    assert unknown.status_code == 200 and unknown.json()["outcome"] == "no_purchase"
    # Redeemed after its refund (the app was offline): refused, nothing credited.
    late = new_guest(stack, guests)
    before = late.balance()
    refused = _redeem(api, late, never_credited)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "transaction_revoked"
    assert late.balance() == before
    for kind, subtype in (("CONSUMPTION_REQUEST", None), ("TEST", None),
                          ("REFUND_DECLINED", None), ("ONE_TIME_CHARGE", None),
                          ("DID_RENEW", "BILLING_RECOVERY")):
        other = _notify(stack, signer.sign_notification(
            kind, subtype=subtype, signed_transaction=signer.sign_transaction(product)))
        assert other.status_code == 200, (kind, other.text)
        assert other.json()["outcome"] == "acknowledged"


def test_forged_and_foreign_notifications_are_400(
    stack: RunningStack, signer: StoreKitSigner, product: str
) -> None:
    purchase = signer.sign_transaction(product)
    untrusted = StoreKitSigner(SigningChain.generate(), bundle_id=signer.bundle_id)
    cases = {
        "untrusted chain": (untrusted.sign_notification("REFUND", signed_transaction=purchase),
                            "invalid_signature"),
        # A genuine payload around a forged transaction.
        "forged transaction": (signer.sign_notification(
            "REFUND", signed_transaction=untrusted.sign_transaction(product)),
            "invalid_signature"),
        "other app": (StoreKitSigner(signer.chain, bundle_id="com.other.app")
                      .sign_notification("REFUND", signed_transaction=purchase), "wrong_app"),
        "production": (StoreKitSigner(signer.chain, bundle_id=signer.bundle_id,
                                      environment="Production", app_apple_id=1)
                       .sign_notification("REFUND", signed_transaction=purchase),
                       "wrong_environment"),
    }
    for name, (payload, reason) in cases.items():
        answer = _notify(stack, payload)
        assert answer.status_code == 400, (name, answer.text)
        assert (_error(answer)["field"], _error(answer)["reason"]) == ("signedPayload",
                                                                        reason), name
    no_transaction = _notify(stack, signer.sign_notification("REFUND"))
    assert no_transaction.status_code == 400
    missing = httpx.post(f"{stack.config.api_url}/functions/v1/apple/notifications", json={})
    assert missing.status_code == 400 and _error(missing)["code"] == "invalid_request"
