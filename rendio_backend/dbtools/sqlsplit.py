"""The Supabase CLI's SQL splitter (`pkg/parser`), so files split into the same statements.

A statement ends at a `;` outside quotes, comments, dollar-quoted bodies and
`BEGIN ATOMIC … END` blocks; statements are trimmed with Go's notion of white space.
"""

from __future__ import annotations

from dataclasses import dataclass

# Go's unicode.IsSpace, which the CLI's strings.TrimSpace uses (Python's isspace differs).
_GO_SPACES = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" \
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_RUNE_ERROR = "\ufffd"


def _is_ident_rune(ch: str) -> bool:
    # Go's unicode.IsLetter / IsDigit are Python's isalpha / isdecimal.
    return ch.isalpha() or ch.isdecimal() or ch == "_" or ch == "$"


def _decode_rune(buf: bytes, i: int) -> tuple[str, int]:
    """Go's utf8.DecodeRune: the rune at `i` and its width; U+FFFD/1 when not a lead byte."""
    b = buf[i]
    width = 1 if b < 0x80 else 2 if b >> 5 == 0b110 else 3 if b >> 4 == 0b1110 else (
        4 if b >> 3 == 0b11110 else 0)
    if width == 0:
        return _RUNE_ERROR, 1
    try:
        return buf[i : i + width].decode("utf-8"), width
    except UnicodeDecodeError:
        return _RUNE_ERROR, 1


@dataclass
class _Lexer:
    """One state of the CLI's statement tokenizer.

    kinds: ready, comment (one `-` seen), dollar (inside `$tag$…` or a `--` line comment,
    ends at `delim`), block (`/* */`, nested), quote (`'` or `"`), tag (reading `$tag`),
    escape (after `\\`), atomic (inside `(…)` or `BEGIN ATOMIC … END`, wraps `inner`).
    """

    kind: str = "ready"
    delim: bytes = b""
    depth: int = 0
    escape: bool = False
    offset: int = 0
    inner: _Lexer | None = None


def _ready_next(ch: str, data: bytes) -> _Lexer | None:
    if ch == "$":
        return _Lexer("tag", offset=len(data) - len(ch.encode()))
    if ch in ("'", '"'):
        return _Lexer("quote", delim=ch.encode())
    if ch == "-":
        return _Lexer("comment")
    if ch == "/":
        return _Lexer("block")
    if ch == "\\":
        return _Lexer("escape")
    if ch == ";":
        return None  # end of statement
    if ch == "(":
        return _Lexer("atomic", delim=b")", inner=_Lexer())
    if ch in ("c", "C") and _is_begin_atomic(data):
        return _Lexer("atomic", delim=b"END", inner=_Lexer())
    return _Lexer()


def _is_begin_atomic(data: bytes) -> bool:
    """Whether `data` ends with `BEGIN <spaces> ATOMIC` as whole words."""
    offset = len(data) - len(b"ATOMIC")
    if offset < 0 or data[offset:].upper() != b"ATOMIC":
        return False
    if offset > 0 and _is_ident_rune(_last_rune(data[:offset])):
        return False
    prefix = data[:offset].decode("utf-8", "replace").rstrip(_GO_SPACES).encode()
    offset = len(prefix) - len(b"BEGIN")
    if offset < 0 or prefix[offset:].upper() != b"BEGIN":
        return False
    return offset == 0 or not _is_ident_rune(_last_rune(prefix[:offset]))


def _last_rune(data: bytes) -> str:
    text = data[-4:].decode("utf-8", "replace")
    return text[-1] if text else _RUNE_ERROR


def _step(state: _Lexer, ch: str, data: bytes) -> _Lexer | None:
    """Feed one rune; `data` is the current statement so far, ending with that rune."""
    kind = state.kind
    if kind == "ready":
        return _ready_next(ch, data)
    if kind == "comment":
        if ch == "-":
            return _Lexer("dollar", delim=b"\n")  # a line comment ends at the newline
        return _ready_next(ch, data)
    if kind == "block":
        window = data[-2:]
        if window == b"/*":
            state.depth += 1
            return state
        if state.depth == 0:
            return _ready_next(ch, data)
        if window == b"*/":
            state.depth -= 1
            if state.depth == 0:
                return _Lexer()
        return state
    if kind == "quote":
        if state.escape:
            if ch.encode() == state.delim:  # a doubled quote stays inside the literal
                state.escape = False
                return state
            return _ready_next(ch, data)
        if ch.encode() == state.delim:
            state.escape = True
        return state
    if kind == "dollar":
        if data.endswith(state.delim):
            return _Lexer()
        return state
    if kind == "tag":
        if ch == "$":
            return _Lexer("dollar", delim=bytes(data[state.offset :]))
        if ch.isalpha() or ch.isdecimal() or ch == "_":
            return state
        return _ready_next(ch, data)
    if kind == "escape":
        return _Lexer()
    # atomic: the wrapped state decides whether we are inside a literal or comment
    assert state.inner is not None
    inner = _step(state.inner, ch, data)
    if inner is not None:
        state.inner = inner
    if state.inner.kind == "ready" and data[-len(state.delim) :].upper() == state.delim:
        return _Lexer()
    return state


def split_raw(sql: str | bytes) -> list[str]:
    """Split SQL into raw statements, each with its `;`, comments and whitespace kept.

    The rules are the Supabase CLI's (`pkg/parser`), quirks included, so the statements
    we execute and record are the ones `supabase db push` would: `;` ends a statement
    except inside quotes, `$tag$` bodies, comments, parentheses and `BEGIN ATOMIC … END`.
    Like the CLI it walks byte by byte (a multi-byte character is seen as its rune and then
    one U+FFFD per continuation byte).
    """
    buf = sql.encode() if isinstance(sql, str) else sql
    out: list[str] = []
    start = 0
    state = _Lexer()
    i = 0
    while i < len(buf):
        ch, width = _decode_rune(buf, i)
        end = i + width
        nxt = _step(state, ch, buf[start:end])
        if nxt is None:
            out.append(buf[start:end].decode("utf-8", "replace"))
            start = end
            state = _Lexer()
            i = end
            continue
        state = nxt
        i += 1  # the CLI advances one byte at a time, even inside a multi-byte rune
    if start < len(buf):
        out.append(buf[start:].decode("utf-8", "replace"))
    return out


def split_statements(sql: str | bytes) -> list[str]:
    """The statements of a migration, exactly as the CLI records them (`SplitAndTrim`).

    Each raw statement loses its trailing `;` and surrounding whitespace; empty ones are
    dropped, comment-only ones are kept (the server answers them with an empty result).
    """
    stats = []
    for token in split_raw(sql):
        trimmed = token.rstrip(";").strip(_GO_SPACES)
        if trimmed:
            stats.append(trimmed)
    return stats


def mark_position(statement: str, position: int | None) -> str:
    """The statement with a caret under the 1-based character `position`, like the CLI."""
    if not position or position <= 0:
        return statement
    lines = statement.split("\n")
    pos = position
    for j, line in enumerate(lines):
        if pos > len(line):
            pos -= len(line) + 1
            continue
        if pos > 0:
            return "\n".join([*lines[: j + 1], " " * (pos - 1) + "^"])
        break
    return statement
