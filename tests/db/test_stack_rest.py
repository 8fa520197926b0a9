"""The gateway and PostgREST of the local stack, through the official clients."""

from __future__ import annotations

import uuid

import httpx
import pytest
from postgrest.exceptions import APIError
from supabase import create_client

from tests.support.stack import RunningStack, SqlRunner


@pytest.fixture(scope="module")
def notes_table(stack: RunningStack) -> str:
    """A table with an "own rows" policy on auth.uid(), and an RPC that reads it."""
    import psycopg

    with psycopg.connect(stack.config.db_url, autocommit=True) as conn:  # as `postgres`
        conn.execute("""
            create table if not exists public.stack_notes (
                id bigint generated always as identity primary key,
                owner uuid not null default auth.uid(),
                body text not null
            );
            alter table public.stack_notes enable row level security;
            drop policy if exists own_notes on public.stack_notes;
            create policy own_notes on public.stack_notes for all to authenticated
                using (owner = (select auth.uid())) with check (owner = (select auth.uid()));
            grant select, insert on public.stack_notes to authenticated;
            create or replace function public.stack_whoami() returns jsonb
                language sql stable set search_path = ''
                as $$ select jsonb_build_object('uid', auth.uid(), 'role', auth.role()) $$;
            grant execute on function public.stack_whoami() to anon, authenticated;
        """)
    stack.reload_schema("/stack_notes?limit=0")
    return "stack_notes"


def _client(stack: RunningStack, token: str | None = None):  # type: ignore[no-untyped-def]
    client = create_client(stack.config.api_url, stack.publishable_key)
    if token:
        client.postgrest.auth(token)
    return client


def test_rls_separates_users(stack: RunningStack, notes_table: str) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    as_alice = _client(stack, stack.user_jwt(alice))
    as_bob = _client(stack, stack.user_jwt(bob))

    as_alice.table(notes_table).insert({"body": "alice's"}).execute()
    as_bob.table(notes_table).insert({"body": "bob's"}).execute()

    alice_rows = as_alice.table(notes_table).select("owner, body").execute().data
    bob_rows = as_bob.table(notes_table).select("owner, body").execute().data
    assert alice_rows == [{"owner": alice, "body": "alice's"}]
    assert bob_rows == [{"owner": bob, "body": "bob's"}]
    # anon has no grant on the table at all
    with pytest.raises(APIError) as denied:
        _client(stack).table(notes_table).select("*").execute()
    assert denied.value.code == "42501"


def test_insert_for_someone_else_is_refused(stack: RunningStack, notes_table: str) -> None:
    alice = str(uuid.uuid4())
    with pytest.raises(APIError) as refused:
        _client(stack, stack.user_jwt(alice)).table(notes_table).insert(
            {"body": "forged", "owner": str(uuid.uuid4())}).execute()
    assert refused.value.code == "42501"


def test_rpc_sees_auth_uid(stack: RunningStack, notes_table: str) -> None:
    user = str(uuid.uuid4())
    assert _client(stack, stack.user_jwt(user)).rpc("stack_whoami").execute().data == {
        "uid": user, "role": "authenticated"}
    assert _client(stack).rpc("stack_whoami").execute().data == {"uid": None, "role": "anon"}


@pytest.mark.parametrize("kind", ["forged", "expired"])
def test_bad_jwt_is_401(stack: RunningStack, notes_table: str, kind: str) -> None:
    sub = str(uuid.uuid4())
    token = (stack.user_jwt(sub, secret="another-secret-that-is-at-least-32-chars!")
             if kind == "forged" else stack.user_jwt(sub, expires_in=-120))
    response = httpx.post(f"{stack.rest_url()}/rpc/stack_whoami",
                          headers={"apikey": stack.publishable_key,
                                   "Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["code"] == "PGRST301"
    with pytest.raises(APIError) as raised:
        _client(stack, token).rpc("stack_whoami").execute()
    assert raised.value.code == "PGRST301"


@pytest.mark.parametrize("apikey", [None, "not-a-key"])
def test_request_without_valid_apikey_is_401(stack: RunningStack, apikey: str | None) -> None:
    headers = {"apikey": apikey} if apikey else {}
    response = httpx.get(f"{stack.rest_url()}/stack_notes", headers=headers)
    assert response.status_code == 401
    expected = "No API key found in request" if apikey is None else (
        "Invalid authentication credentials")
    assert response.json() == {"message": expected}


def test_apikey_in_query_is_accepted(stack: RunningStack) -> None:
    # Kong's key-auth also reads the `apikey` query parameter (used by e.g. websockets).
    url = f"{stack.config.api_url}/auth/v1/health"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, params={"apikey": stack.publishable_key}).status_code == 200


def test_proxy_preserves_status_headers_and_large_bodies(
    stack: RunningStack, notes_table: str, sql: SqlRunner
) -> None:
    owner = str(uuid.uuid4())
    token = stack.user_jwt(owner)
    headers = {"apikey": stack.publishable_key, "Authorization": f"Bearer {token}",
               "Prefer": "return=representation,count=exact"}
    big = "x" * 400_000  # larger than the gateway's single-message buffer
    created = httpx.post(f"{stack.rest_url()}/{notes_table}", headers=headers,
                         json=[{"body": big}, {"body": "small"}])
    assert created.status_code == 201
    assert created.headers["content-range"] == "*/2"
    listed = httpx.get(f"{stack.rest_url()}/{notes_table}?select=body&order=id",
                       headers=headers)
    assert listed.status_code == 200
    assert [row["body"] for row in listed.json()] == [big, "small"]
    assert listed.headers["content-range"] == "0-1/2"
    missing = httpx.get(f"{stack.rest_url()}/no_such_table", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "42P01"  # PostgREST 12.0: relation does not exist


def test_unknown_route_is_404(stack: RunningStack) -> None:
    assert httpx.get(f"{stack.config.api_url}/nope").status_code == 404


def test_an_encoded_slash_does_not_reach_postgrest(stack: RunningStack) -> None:
    response = httpx.get(f"{stack.config.api_url}/rest%2Fv1/stack_notes",
                         headers={"apikey": stack.secret_key})
    assert response.status_code == 404
