"""Go's `strconv` rules, as far as filter literals reach them.

go-bexpr converts a filter's literal to the field's Go type with strconv
(`ParseBool`, `ParseInt` with base 0 and underscores, `ParseFloat`, `Unquote`);
these helpers copy those rules and their error wording. Pure: no I/O.
"""

from __future__ import annotations

import math


class _CoerceError(ValueError):
    pass


# Go's one-letter escapes, both ways: %q writes them, Unquote reads them.
_SIMPLE_ESCAPES = dict(zip("abfnrtv", "\a\b\f\n\r\t\v", strict=True))
_GO_ESCAPES = {ch: "\\" + esc for esc, ch in _SIMPLE_ESCAPES.items()}
_GO_ESCAPES.update({"\\": "\\\\", '"': '\\"'})
_HEX = frozenset("0123456789abcdefABCDEF")


def _go_quote(text: str) -> str:
    """Go's %q, so messages read exactly as Consul's."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _go_unquote(literal: str) -> str | None:
    """strconv.Unquote of a `raw` or "interpreted" literal; None when Go refuses it."""
    body = literal[1:-1]
    if literal[0] == "`":
        return body.replace("\r", "")  # Go drops carriage returns from raw strings
    if "\n" in body:
        return None
    if "\\" not in body:
        return body
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        if i + 1 >= n:
            return None
        esc = body[i + 1]
        i += 2
        if esc in _SIMPLE_ESCAPES:
            out.append(ord(_SIMPLE_ESCAPES[esc]))
        elif esc in ("\\", '"'):
            out.append(ord(esc))
        elif esc in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i : i + width]
            if len(digits) != width or not set(digits) <= _HEX:
                return None
            code = int(digits, 16)
            i += width
            if esc == "x":
                out.append(code)
            elif code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                return None
            else:
                out += chr(code).encode()
        elif "0" <= esc <= "7":
            digits = body[i - 1 : i + 2]
            if len(digits) != 3 or not all("0" <= d <= "7" for d in digits):
                return None
            code = int(digits, 8)
            if code > 255:
                return None
            out.append(code)
            i += 2
        else:  # includes \' which Go allows only in rune literals
            return None
    return out.decode("utf-8", "surrogateescape")


def _num_error(func: str, text: str, reason: str) -> _CoerceError:
    return _CoerceError(f"strconv.{func}: parsing {_go_quote(text)}: {reason}")


def _parse_bool(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise _num_error("ParseBool", text, "invalid syntax")


def _underscore_ok(text: str) -> bool:
    """Go's rule: `_` only between digits, or between a base prefix and a digit."""
    saw, i = "^", 0
    if text[:1] in ("+", "-"):
        text = text[1:]
    hexadecimal = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        i, saw, hexadecimal = 2, "0", text[1].lower() == "x"
    for ch in text[i:]:
        if ch.isdigit() or (hexadecimal and ch.lower() in "abcdef"):
            saw = "0"
        elif ch == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def _scan_uint(text: str, bits: int) -> int | str:
    """ParseUint(text, 0, bits): the value, or "syntax" / "range" as Go decides."""
    if not text:
        return "syntax"
    digits, base = text, 10
    if text[0] == "0":
        prefix = text[1:2].lower()
        if len(text) >= 3 and prefix in ("b", "o", "x"):
            base, digits = {"b": 2, "o": 8, "x": 16}[prefix], text[2:]
        else:
            base, digits = 8, text[1:]
    limit, value, underscores = (1 << bits) - 1, 0, False
    for ch in digits:
        if ch == "_":
            underscores = True
            continue
        if not ch.isascii() or not ch.isalnum():
            return "syntax"
        digit = int(ch, 36)
        if digit >= base:
            return "syntax"
        value = value * base + digit
        if value > limit:  # Go stops at the first overflow
            return "range"
    if underscores and not _underscore_ok(text):
        return "syntax"
    return value


def _parse_uint(text: str, bits: int) -> int:
    value = _scan_uint(text, bits)
    if isinstance(value, str):
        reason = "value out of range" if value == "range" else "invalid syntax"
        raise _num_error("ParseUint", text, reason)
    return value


def _parse_int(text: str, bits: int) -> int:
    unsigned = text[1:] if text[:1] in ("+", "-") else text
    value = _scan_uint(unsigned, bits) if text else "syntax"
    if value == "syntax":
        raise _num_error("ParseInt", text, "invalid syntax")
    negative = text[:1] == "-"
    limit = (1 << (bits - 1)) - (0 if negative else 1)
    if isinstance(value, str) or value > limit:
        raise _num_error("ParseInt", text, "value out of range")
    return -value if negative else value


def _parse_float(text: str) -> float:
    # differs: Python's float() stands in for Go's ParseFloat(s, 64); both take
    # decimals, exponents, inf/infinity/nan and `_` between digits.
    special = text.lower().lstrip("+-") in ("inf", "infinity", "nan")
    try:
        if not text.isascii() or text != text.strip():
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise _num_error("ParseFloat", text, "invalid syntax") from None
    if math.isinf(value) and not special:
        raise _num_error("ParseFloat", text, "value out of range")
    return value
