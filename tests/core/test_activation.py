"""Correlation ids: short, hex, unique within a process, across blocks, processes and forks."""

import itertools
import os
import re
import subprocess
import sys
import threading

from runtime.core.activation import Ids, new_id
from tests.clitools import ROOT

ID = re.compile(r"[0-9a-f]{16}")


def test_ids_are_16_hex_digits_and_distinct() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert all(ID.fullmatch(i) for i in ids)  # no dot or wildcard: safe in a NATS subject
    assert len(set(ids)) == len(ids)


def test_a_used_up_block_draws_a_new_prefix() -> None:
    ids = Ids()
    prefix = ids()[:10]
    ids._block = (prefix, itertools.count(Ids.BLOCK - 1))
    last, first = ids(), ids()
    assert last == prefix + "ffffff"
    assert first[10:] == "000000" and first[:10] != prefix
    assert ID.fullmatch(first)


def test_threads_never_share_an_id() -> None:
    ids = Ids()
    ids._block = (ids()[:10], itertools.count(Ids.BLOCK - 500))  # renewals under contention
    found: list[list[str]] = [[] for _ in range(8)]

    def take(into: list[str]) -> None:
        into.extend(ids() for _ in range(2_000))

    threads = [threading.Thread(target=take, args=(out,)) for out in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for out in found for i in out]
    assert len(set(every)) == len(every) == 16_000


def test_other_processes_and_forked_children_get_other_prefixes() -> None:
    code = "from runtime.core.activation import new_id; print(new_id())"
    other = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    ours = new_id()
    assert ID.fullmatch(other) and other[:10] != ours[:10]
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only reports its id
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    forked = os.read(read, 64).decode()
    os.close(read)
    assert ID.fullmatch(forked) and forked[:10] != ours[:10]
