"""Portable SQL as PostgreSQL reads it: ``?`` placeholders become ``$1``, ``$2``, ... .

Only ``?`` outside quotes, identifiers and comments is a placeholder. Statements are few and
repeated, so each translation is cached (the SQL text is the key).
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    out: list[str] = []
    count = 0
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"":  # a literal or identifier, '' / "" doubled inside
            end = i + 1
            while end < n:
                if sql[end] == char:
                    if end + 1 < n and sql[end + 1] == char:
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i:end + 1])
            i = end + 1
        elif char == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif char == "?":
            count += 1
            out.append(f"${count}")
            i += 1
        else:
            end = i + 1
            while end < n and sql[end] not in "'\"-?":
                end += 1
            out.append(sql[i:end])
            i = end
    return "".join(out)


_ROWS = ("SELECT", "WITH", "VALUES", "SHOW", "TABLE", "EXPLAIN")


@lru_cache(maxsize=4096)
def returns_rows(sql: str) -> bool:
    """Whether a statement answers rows (a query, or a change with RETURNING)."""
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in _ROWS or " RETURNING " in f" {sql.upper()} "


def rowcount(status: str) -> int:
    """The count at the end of a command tag (``UPDATE 3``, ``INSERT 0 1``), or -1."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else -1
