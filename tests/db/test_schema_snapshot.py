"""supabase/schema.sql is the schema that supabase/migrations build.

A migration added or edited without regenerating the snapshot fails here. Regenerate with
`RENDIO_UPDATE_SCHEMA_SNAPSHOT=1 pytest tests/test_schema_snapshot.py`, then review the
diff of supabase/schema.sql like any other change.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from rendio_backend.dbtools.migrations import migrate
from rendio_backend.dbtools.schema import (
    SNAPSHOT_HEADER,
    SchemaDumpError,
    dump_schema,
    find_pg_dump,
    normalise_dump,
)
from tests.support.stack import MIGRATIONS, REPO, ScratchDb

SNAPSHOT = REPO / "supabase" / "schema.sql"


def _pg_dumps() -> list[Path]:
    """The default pg_dump, and the one of RENDIO_PG_BIN's build when that is another."""
    found = [find_pg_dump()]
    pg_bin = os.environ.get("RENDIO_PG_BIN")
    if pg_bin and (Path(pg_bin) / "pg_dump").is_file():
        own = Path(pg_bin) / "pg_dump"
        if own.resolve() != found[0].resolve():
            found.append(own)
    return found


def _diff(expected: str, actual: str) -> str:
    lines = difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                 "supabase/schema.sql", "migrated database", lineterm="", n=2)
    return "\n".join(list(lines)[:80])


def test_snapshot_matches_the_migrations(db: ScratchDb) -> None:
    migrate(db.url, MIGRATIONS)
    if os.environ.get("RENDIO_UPDATE_SCHEMA_SNAPSHOT") == "1":
        SNAPSHOT.write_text(dump_schema(db.superuser_url))
    expected = SNAPSHOT.read_text()
    for pg_dump in _pg_dumps():
        actual = dump_schema(db.superuser_url, pg_dump=pg_dump)
        assert actual == expected, (
            f"supabase/schema.sql is not what supabase/migrations build (dumped by {pg_dump}); "
            "regenerate it with RENDIO_UPDATE_SCHEMA_SNAPSHOT=1 pytest "
            f"tests/test_schema_snapshot.py\n{_diff(expected, actual)}")


def test_snapshot_starts_with_its_header() -> None:
    assert SNAPSHOT.read_text().splitlines()[0] == SNAPSHOT_HEADER


def test_an_unmigrated_database_has_nothing_of_ours(db: ScratchDb) -> None:
    # Supabase's auth and storage (the bootstrap) are not part of the snapshot; only the
    # default privileges of `postgres` in public, which the migrations change, show up
    # (as Supabase sets them up).
    headers = [line for line in dump_schema(db.superuser_url).splitlines()
               if line.startswith("-- Name: ")]
    assert headers
    assert all(h.endswith("; Type: DEFAULT ACL; Schema: public; Owner: postgres")
               for h in headers), headers


def test_missing_pg_dump_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaDumpError, match="pg_dump not found") as info:
        dump_schema("postgresql://postgres@127.0.0.1/postgres", pg_dump=tmp_path / "pg_dump")
    assert "\n" not in str(info.value)


def test_failing_pg_dump_is_a_clear_error() -> None:
    # Port 1: nothing listens there, so pg_dump cannot connect.
    with pytest.raises(SchemaDumpError, match="failed with exit code 1") as info:
        dump_schema("postgresql://postgres:secret@127.0.0.1:1/postgres")
    assert "\n" not in str(info.value)
    assert "secret" not in str(info.value)


RAW_DUMP = """--
-- PostgreSQL database dump
--

\\restrict abc123

-- Dumped from database version 15.18
-- Dumped by pg_dump version 18.6

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: private; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA private;


ALTER SCHEMA private OWNER TO postgres;

--
-- Name: auth; Type: SCHEMA; Schema: -; Owner: supabase_admin
--

CREATE SCHEMA auth;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: t; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.t (
    id integer NOT NULL   \n);


--
-- Name: users on_user; Type: TRIGGER; Schema: auth; Owner: supabase_auth_admin
--

CREATE TRIGGER on_user AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION private.f();


--
-- Name: users audit; Type: TRIGGER; Schema: auth; Owner: supabase_auth_admin
--

CREATE TRIGGER audit AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION auth.audit();


--
-- Name: TABLE t; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT,INSERT,REFERENCES,DELETE,TRIGGER,TRUNCATE,MAINTAIN,UPDATE ON TABLE public.t TO a;
GRANT REFERENCES,TRIGGER,TRUNCATE,MAINTAIN ON TABLE public.t TO b;
GRANT MAINTAIN ON TABLE public.t TO c;
GRANT UPDATE(id) ON TABLE public.t TO d;


--
-- Name: DEFAULT PRIVILEGES FOR FUNCTIONS; Type: DEFAULT ACL; Schema: -; Owner: postgres
--

ALTER DEFAULT PRIVILEGES FOR ROLE postgres REVOKE ALL ON FUNCTIONS  FROM PUBLIC;


--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: public; Owner: supabase_admin
--

ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public GRANT ALL ON TABLES TO anon;


--
-- PostgreSQL database dump complete
--

\\unrestrict abc123

"""


def test_normaliser_keeps_ours_and_irons_out_versions() -> None:
    text = normalise_dump(RAW_DUMP)
    assert text.splitlines()[0] == SNAPSHOT_HEADER
    assert "restrict" not in text and "Dumped" not in text and "SET " not in text
    assert "CREATE SCHEMA private;" in text and "CREATE SCHEMA auth;" not in text
    assert "    id integer NOT NULL\n);" in text
    assert "EXECUTE FUNCTION private.f()" in text and "auth.audit()" not in text
    assert "GRANT ALL ON TABLE public.t TO a;" in text
    assert "GRANT TRUNCATE,REFERENCES,TRIGGER ON TABLE public.t TO b;" in text
    assert " TO c;" not in text
    assert "GRANT UPDATE(id) ON TABLE public.t TO d;" in text
    assert "ALTER DEFAULT PRIVILEGES FOR ROLE postgres REVOKE ALL ON FUNCTIONS FROM PUBLIC;" in text
    assert "supabase_admin IN SCHEMA public" not in text
    assert text.endswith(";\n") and not any(line != line.rstrip() for line in text.splitlines())
