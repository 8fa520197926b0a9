"""The Supabase CLI's SQL splitter, reproduced: files split into the same statements."""

from __future__ import annotations

import pytest

from rendio_backend.dbtools.sqlsplit import split_raw, split_statements

FUNCTION_SQL = """\
-- a plpgsql body full of semicolons
create function public.add_one(x int) returns int
language plpgsql
set search_path = ''
as $body$
declare
  y int;  -- ; inside a comment
begin
  y := x + 1;
  raise notice 'semi; colon';
  return y;
end;
$body$;

do $$ begin perform 1; end $$;

create function public.twice(x int) returns int
language sql
set search_path = ''
begin atomic
  select x * 2;
end;

comment on function public.add_one(int) is 'it''s; fine';
"""


@pytest.mark.parametrize("parts", [
    ["END;", "-- comment"],
    ["SELECT --; 1"],
    ["- ;", "END"],
    ["SELECT /* ; */ 1;"],
    ["SELECT /*; /*;*/ ;*/ 1"],
    [";", "END;", ";"],
    ["\\;;", "\\;"],
    ["$tag$ any ; string$tag$"],
    ["SELECT ';'';' 1"],
    ['CREATE POLICY "cats;dogs" on t;', " END"],
    ["CREATE RULE r AS ON UPDATE TO t DO (NOTIFY t; SELECT 1);", "SELECT 1"],
    ["create function f() returns int language sql\nbegin atomic\n select 1;\n select 2;\nend;"],
    ["create function fn_atomic() returns void language plpgsql as $$ begin null; end; $$;",
     "\nselect 1;"],
    ["select 'héllo; wörld';", " select 2"],
])
def test_split_raw_follows_the_supabase_cli(parts: list[str]) -> None:
    assert split_raw("".join(parts)) == parts


def test_split_statements_trims_like_the_cli() -> None:
    text = "-- head\ncreate table t (id int);\n\n  select 1 ;;\n-- tail\n"
    assert split_statements(text) == ["-- head\ncreate table t (id int)", "select 1",
                                       "-- tail"]


def test_dollar_quoted_bodies_stay_whole() -> None:
    stats = split_statements(FUNCTION_SQL)
    assert len(stats) == 4
    assert stats[0].startswith("-- a plpgsql body") and stats[0].endswith("$body$")
    assert "raise notice 'semi; colon';" in stats[0]
    assert stats[1] == "do $$ begin perform 1; end $$"
    assert stats[2].endswith("select x * 2;\nend")
    assert stats[3] == "comment on function public.add_one(int) is 'it''s; fine'"
