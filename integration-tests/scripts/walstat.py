#!/usr/bin/env python3
"""Which b-trees the pages in an embedded database's write-ahead log belong to.

    integration-tests/scripts/walstat.py PATH/bench.db [TABLE]

Reads the valid frames of PATH/bench.db-wal (those since the log last started over),
names each frame's page by its table or index (SQLite's dbstat, on a copy, so the
database itself is not touched), and counts the log's window in rows of TABLE
(default field_outbox: one EXITED report per gate PASS), from the smallest to the
largest rowid in its frames. Kill the server with SIGKILL in the middle of a run
(a clean stop checkpoints and removes the log) and point this at its database: it
prints pages per commit and per row of TABLE, b-tree by b-tree.
"""
import collections
import shutil
import sqlite3
import struct
import sys
import tempfile


def frames(wal):
    """(page number, is a commit, page bytes) of each valid frame."""
    _, _, page_size, _, salt1, salt2 = struct.unpack(">IIIIII", wal[:24])
    offset = 32
    while offset + 24 + page_size <= len(wal):
        page, size_after, s1, s2 = struct.unpack(">IIII", wal[offset:offset + 16])
        if (s1, s2) != (salt1, salt2):
            break
        yield page, size_after != 0, wal[offset + 24:offset + 24 + page_size]
        offset += 24 + page_size


def varint(data, i):
    value = 0
    for k in range(9):
        byte = data[i + k]
        if k == 8:
            return (value << 8) | byte, i + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, i + k + 1


def rowids(page):
    """The rowids of a table's leaf page."""
    if page[0] != 0x0D:
        return []
    cells = struct.unpack(">H", page[3:5])[0]
    found = []
    for j in range(cells):
        pointer = struct.unpack(">H", page[8 + 2 * j:10 + 2 * j])[0]
        _, i = varint(page, pointer)
        found.append(varint(page, i)[0])
    return found


def main():
    db = sys.argv[1]
    table = sys.argv[2] if len(sys.argv) > 2 else "field_outbox"
    wal = open(db + "-wal", "rb").read()
    copy = tempfile.mkdtemp() + "/copy.db"
    shutil.copy(db, copy)
    shutil.copy(db + "-wal", copy + "-wal")
    connection = sqlite3.connect(copy)
    owner = {page: name for name, page in connection.execute("SELECT name, pageno FROM dbstat")}
    table_pages = {page for page, name in owner.items() if name == table}
    pages, commits, ids = [], 0, []
    for page, commit, data in frames(wal):
        pages.append(page)
        commits += commit
        if page in table_pages:
            ids.extend(rowids(data))
    rows = max(ids) - min(ids) if ids else 0
    print(f"{len(pages)} pages in {commits} commits ({len(pages) / max(commits, 1):.1f} a commit); "
          f"{rows} rows of {table} in the window ({len(pages) / max(rows, 1):.2f} pages a row)")
    for name, count in collections.Counter(owner.get(p, "(free)") for p in pages).most_common():
        print(f"{count:8d} {count / max(commits, 1):6.2f} a commit {count / max(rows, 1):6.2f} a row  {name}")


if __name__ == "__main__":
    main()
