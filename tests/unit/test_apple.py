"""The pure parts of the Apple integrations: DeviceCheck's answers and provider token,
StoreKit verification against locally made chains, the fakes' token rules, settings."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rendio_backend import ConfigurationError, RendioConfig
from rendio_backend.apple import (
    AppleApiError,
    AppleUnavailable,
    DeviceBits,
    DeviceCheckClient,
    InvalidDeviceToken,
    InvalidSignedData,
    StoreKitVerifier,
)
from rendio_backend.apple.devicecheck import (
    DEVELOPMENT_URL,
    PRODUCTION_URL,
    devicecheck_url,
    parse_bits,
    raise_for_status,
)
from rendio_backend.apple.storekit import load_root_certificates, storekit_environment
from rendio_backend.local.fakes import storekit as fake_storekit
from rendio_backend.local.fakes.devicecheck import device_of, fake_device_token
from rendio_backend.local.fakes.storekit import SigningChain, StoreKitSigner

BUNDLE = "com.rendio.app"


def _pem_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


# --- DeviceCheck ---------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "bits"), [
    ("Failed to find bit state", DeviceBits()),
    ("Bit State Not Found", DeviceBits()),
    ('{"bit0": true, "bit1": false, "last_update_time": "2026-11"}',
     DeviceBits(True, False, "2026-11")),
    ('{"bit0": false, "bit1": true}', DeviceBits(False, True, None)),
])
def test_query_answers_are_read_as_apple_writes_them(body: str, bits: DeviceBits) -> None:
    assert parse_bits(body) == bits


@pytest.mark.parametrize("body", ["<html>oops</html>", "[]", '{"bit0": "yes"}'])
def test_an_unexpected_query_answer_is_our_problem(body: str) -> None:
    with pytest.raises(AppleApiError):
        parse_bits(body)


@pytest.mark.parametrize(("status", "text", "error"), [
    (400, "Missing or incorrectly formatted device token payload", InvalidDeviceToken),
    (400, "Missing or incorrectly formatted authorization token", AppleApiError),
    (401, "Unable to verify authorization token", AppleApiError),
    (403, "", AppleApiError),
    (404, "", AppleApiError),
    (429, "", AppleUnavailable),
    (500, "Internal Server Error", AppleUnavailable),
    (503, "", AppleUnavailable),
])
def test_status_codes_map_to_typed_errors(status: int, text: str,
                                          error: type[Exception]) -> None:
    with pytest.raises(error):
        raise_for_status(httpx.Response(status, text=text), "query_two_bits")
    raise_for_status(httpx.Response(200, text=""), "query_two_bits")


def test_the_host_follows_the_environment() -> None:
    assert devicecheck_url(RendioConfig(environment="development")) == DEVELOPMENT_URL
    assert devicecheck_url(RendioConfig(environment="staging")) == PRODUCTION_URL
    assert devicecheck_url(RendioConfig(environment="production")) == PRODUCTION_URL
    chosen = RendioConfig(apple_devicecheck_url="http://127.0.0.1:9/dc/")
    assert devicecheck_url(chosen) == "http://127.0.0.1:9/dc"


def test_the_provider_token_is_apples_recipe_and_reused(tmp_path: Path) -> None:
    pem = _pem_key()
    key_file = tmp_path / "AuthKey_ABC.p8"
    key_file.write_text(pem)
    for private_key in (pem, pem.replace("\n", "\\n"), str(key_file)):
        client = DeviceCheckClient(base_url="http://x", team_id="TEAM123456",
                                   key_id="KEY1234567", private_key=private_key)
        token = client.authorization_token()
        assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "KEY1234567"}
        public = serialization.load_pem_private_key(pem.encode(), None).public_key()
        claims = jwt.decode(token, public, algorithms=["ES256"])  # type: ignore[arg-type]
        assert set(claims) == {"iss", "iat"} and claims["iss"] == "TEAM123456"
        assert abs(claims["iat"] - time.time()) < 5
        assert client.authorization_token() == token
        asyncio.run(client.aclose())


def test_devicecheck_without_credentials_fails_on_use_only() -> None:
    client = DeviceCheckClient.from_config(RendioConfig())
    with pytest.raises(ConfigurationError):
        client.authorization_token()
    bad = DeviceCheckClient(base_url="http://x", team_id="T", key_id="K",
                            private_key="not a key")
    with pytest.raises(ConfigurationError):
        bad.authorization_token()
    asyncio.run(client.aclose())
    asyncio.run(bad.aclose())


def test_unreachable_and_silent_apple_is_unavailable() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_port = closed.getsockname()[1]
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        for port in (refused_port, silent.getsockname()[1]):
            client = DeviceCheckClient(base_url=f"http://127.0.0.1:{port}", team_id="T",
                                       key_id="K", private_key=_pem_key(), read_timeout=0.3)

            async def query(client: DeviceCheckClient = client) -> None:
                try:
                    await client.query_two_bits(fake_device_token())
                finally:
                    await client.aclose()

            with pytest.raises(AppleUnavailable):
                asyncio.run(query())


@pytest.mark.parametrize(("token", "device"), [
    (fake_device_token("phone-1"), b"phone-1"),
    ("c29tZQ==", b"some"),
    ("c29tZQ", None), ("not base64!", None), ("", None), ("c29t\nZQ==", None), (7, None),
])
def test_the_fake_reads_device_tokens_as_documented(token: object,
                                                    device: bytes | None) -> None:
    assert device_of(token) == device
    assert fake_device_token("phone-1") != fake_device_token("phone-1")  # fresh each time


# --- StoreKit -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chain() -> SigningChain:
    return SigningChain.generate()


def _verifier(chain: SigningChain, **options: object) -> StoreKitVerifier:
    return StoreKitVerifier([chain.root_der], bundle_id=BUNDLE, **options)  # type: ignore[arg-type]


def test_signed_transactions_verify_with_apples_verifier(chain: SigningChain) -> None:
    signer = StoreKitSigner(chain, bundle_id=BUNDLE)
    signed = signer.sign_transaction("credits.100", transaction_id="2000000000000001",
                                     quantity=3, app_account_token="8f6d1d30-3b8e-4f55-"
                                     "9b52-4c7a0f5e7a11")
    transaction = asyncio.run(_verifier(chain).verify_transaction(signed))
    assert (transaction.transaction_id, transaction.product_id, transaction.quantity,
            transaction.environment, transaction.revocation_date) == (
        "2000000000000001", "credits.100", 3, "Sandbox", None)
    assert str(transaction.app_account_token) == "8f6d1d30-3b8e-4f55-9b52-4c7a0f5e7a11"
    assert jwt.get_unverified_header(signed) == {"alg": "ES256", "x5c": chain.x5c}

    notification = _verifier(chain).verify_notification_sync(
        signer.sign_notification("REFUND", signed_transaction=signed, subtype=None))
    assert notification.is_refund and notification.transaction == transaction


@pytest.mark.parametrize(("make", "reason"), [
    (lambda c: StoreKitSigner(SigningChain.generate(), bundle_id=BUNDLE), "invalid_signature"),
    (lambda c: StoreKitSigner(c, bundle_id="com.other.app"), "wrong_app"),
    (lambda c: StoreKitSigner(c, bundle_id=BUNDLE, environment="Production"),
     "wrong_environment"),
    (lambda c: StoreKitSigner(c, bundle_id=BUNDLE, environment="Xcode"), "wrong_environment"),
])
def test_foreign_or_forged_transactions_are_refused(chain: SigningChain, make: object,
                                                    reason: str) -> None:
    signer = make(chain)  # type: ignore[operator]
    with pytest.raises(InvalidSignedData) as refused:
        _verifier(chain).verify_transaction_sync(signer.sign_transaction("credits.100"))
    assert refused.value.details["reason"] == reason


def test_the_chain_needs_apples_marker_extensions(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the OIDs the chain is valid X.509 but not the App Store's: refused.
    for marker in ("LEAF_OID", "INTERMEDIATE_OID"):
        with monkeypatch.context() as patch:
            patch.setattr(fake_storekit, marker, x509.ObjectIdentifier("1.2.3.4"))
            bare = SigningChain.generate()
        signed = StoreKitSigner(bare, bundle_id=BUNDLE).sign_transaction("credits.100")
        with pytest.raises(InvalidSignedData):
            _verifier(bare).verify_transaction_sync(signed)


def test_a_transaction_signed_before_the_chain_was_valid_is_refused(
    chain: SigningChain
) -> None:
    signer = StoreKitSigner(chain, bundle_id=BUNDLE)
    old = signer.sign_transaction("credits.100", signedDate=int(time.mktime(
        (1999, 1, 1, 0, 0, 0, 0, 0, 0)) * 1000))
    with pytest.raises(InvalidSignedData):
        _verifier(chain).verify_transaction_sync(old)


def test_storekit_settings(chain: SigningChain, tmp_path: Path) -> None:
    der, pem = tmp_path / "root.cer", tmp_path / "roots.pem"
    der.write_bytes(chain.root_der)
    pem.write_bytes(chain.root.public_bytes(serialization.Encoding.PEM) * 2)
    assert load_root_certificates([str(der), str(pem)]) == [chain.root_der] * 3
    config = RendioConfig.model_validate({"apple_root_certificates": f" {der} ,{pem},",
                                          "apple_bundle_id": BUNDLE})
    assert config.apple_root_certificates == (str(der), str(pem))
    signed = StoreKitSigner(chain, bundle_id=BUNDLE).sign_transaction("credits.100")
    assert StoreKitVerifier.from_config(config).verify_transaction_sync(signed).product_id
    from_env = RendioConfig.from_env(env_file=None, environ={
        "APPLE_ROOT_CERTIFICATES": f"{der},{pem}", "APPLE_APP_APPLE_ID": "1234",
        "APPLE_STOREKIT_ONLINE_CHECKS": "true", "APPLE_DEVICECHECK_URL": "http://dc"})
    assert (from_env.apple_root_certificates, from_env.apple_app_apple_id,
            from_env.apple_storekit_online_checks, from_env.apple_devicecheck_url) == (
        (str(der), str(pem)), 1234, True, "http://dc")

    assert storekit_environment(RendioConfig(environment="production")) == "Production"
    assert storekit_environment(RendioConfig(environment="staging")) == "Sandbox"
    for broken in (RendioConfig(),  # no bundle id, no roots
                   RendioConfig(apple_bundle_id=BUNDLE),
                   RendioConfig(apple_bundle_id=BUNDLE, environment="production",
                                apple_root_certificates=(str(der),)),  # no app id
                   RendioConfig(apple_bundle_id=BUNDLE,
                                apple_root_certificates=(str(tmp_path / "missing.cer"),)),
                   RendioConfig(apple_bundle_id=BUNDLE, apple_root_certificates=(__file__,))):
        with pytest.raises(ConfigurationError):
            StoreKitVerifier.from_config(broken).verify_transaction_sync(signed)
    with pytest.raises(ConfigurationError):  # the modes that skip the signature
        StoreKitVerifier([chain.root_der], bundle_id=BUNDLE, environment="LocalTesting")
