"""DocumentStore contract: every adapter behaves like Firestore for what we use."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from shared.ports import EXPIRE_AT, AlreadyExists, BackendError, DocumentStore, Page, Transaction


def test_get_of_a_missing_document_is_none(document_store: DocumentStore, unique: str) -> None:
    assert document_store.get("things", unique) is None


def test_set_then_get_round_trips_nested_data(document_store: DocumentStore, unique: str) -> None:
    data = {"a": 1, "nested": {"list": [1, "two", None], "flag": True}, "text": "é"}
    document_store.set("things", unique, data)
    assert document_store.get("things", unique) == data


def test_create_is_create_if_absent(document_store: DocumentStore, unique: str) -> None:
    assert document_store.create("things", unique, {"n": 1}) is True
    assert document_store.create("things", unique, {"n": 2}) is False
    assert document_store.get("things", unique) == {"n": 1}


def test_delete_removes_and_tolerates_absence(document_store: DocumentStore, unique: str) -> None:
    document_store.set("things", unique, {"n": 1})
    document_store.delete("things", unique)
    document_store.delete("things", unique)
    assert document_store.get("things", unique) is None


def test_find_matches_on_one_field(document_store: DocumentStore, unique: str) -> None:
    document_store.set("things", f"{unique}-a", {"owner": unique, "n": 1})
    document_store.set("things", f"{unique}-b", {"owner": unique, "n": 2})
    document_store.set("things", f"{unique}-c", {"owner": "someone else", "n": 3})
    found = document_store.find("things", "owner", unique)
    assert sorted(doc["n"] for doc in found) == [1, 2]


def test_transaction_commits_reads_and_writes(document_store: DocumentStore, unique: str) -> None:
    document_store.set("counters", unique, {"n": 1})

    def bump(txn: Transaction) -> int:
        current = txn.get("counters", unique)
        assert current is not None
        txn.set("counters", unique, {"n": current["n"] + 1})
        return int(current["n"])

    assert document_store.run_transaction(bump) == 1
    assert document_store.get("counters", unique) == {"n": 2}


def test_transaction_create_fails_when_the_document_exists(document_store: DocumentStore, unique: str) -> None:
    document_store.set("things", unique, {"n": 1})

    def create(txn: Transaction) -> None:
        txn.create("things", unique, {"n": 2})

    with pytest.raises(AlreadyExists):
        document_store.run_transaction(create)
    assert document_store.get("things", unique) == {"n": 1}


def test_an_exception_in_the_transaction_writes_nothing(document_store: DocumentStore, unique: str) -> None:
    def fail(txn: Transaction) -> None:
        txn.get("things", unique)
        txn.set("things", unique, {"n": 1})
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        document_store.run_transaction(fail)
    assert document_store.get("things", unique) is None


def test_concurrent_transactions_lose_no_update(document_store: DocumentStore, unique: str, request: pytest.FixtureRequest) -> None:
    """Two writers on one document: conflicts retry, every increment lands."""
    # The Firestore emulator resolves each conflict by a lock timeout of about 2 s: keep its count small.
    per_worker = 3 if request.node.get_closest_marker("emulator") else 15
    document_store.set("counters", unique, {"n": 0})
    runs: list[int] = []

    def bump(txn: Transaction) -> None:
        runs.append(1)
        current = txn.get("counters", unique)
        assert current is not None
        txn.set("counters", unique, {"n": current["n"] + 1})

    def worker() -> None:
        for _ in range(per_worker):
            document_store.run_transaction(bump, max_attempts=50)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert document_store.get("counters", unique) == {"n": 2 * per_worker}
    assert len(runs) >= 2 * per_worker


def test_a_write_between_read_and_commit_is_never_lost(document_store: DocumentStore, unique: str) -> None:
    """Another writer between our read and our commit: either we re-run and see it, or it is refused.

    Optimistic stores (SQLite) let the other write land and re-run the transaction; Firestore
    locks what the transaction read, so the other write waits and is aborted. Both are
    serializable; what must never happen is both writes landing on a stale read.
    """
    _bump_with_interference(document_store, unique, lambda: document_store.set("counters", unique, {"n": 100}))


def test_a_transaction_never_acts_on_a_torn_read(document_store: DocumentStore, unique: str) -> None:
    """Two documents always written together: a transaction reading one, then the other, sees them agree.

    Another writer updates both between our two reads. Firestore locks what we read, so that
    writer is refused; SQLite lets it land and must re-run us, so the error we raise on a
    torn pair never escapes. This is what keeps onboarding from answering 409 on a torn
    read of the idempotency record and the tenant.
    """
    first, second = f"{unique}-a", f"{unique}-b"
    document_store.set("pairs", first, {"v": 0})
    document_store.set("pairs", second, {"v": 0})
    seen: list[tuple[int, int]] = []
    refused: list[BackendError] = []

    def write_pair(other: Transaction) -> None:
        other.set("pairs", first, {"v": 1})
        other.set("pairs", second, {"v": 1})

    def read_pair(txn: Transaction) -> int:
        a = txn.get("pairs", first)
        if not seen:
            try:
                document_store.run_transaction(write_pair, max_attempts=1)
            except BackendError as error:
                refused.append(error)
        b = txn.get("pairs", second)
        assert a is not None and b is not None
        seen.append((a["v"], b["v"]))
        if a["v"] != b["v"]:
            raise ValueError(f"torn read: {a} and {b}")
        return int(a["v"])

    result = document_store.run_transaction(read_pair)
    if refused:
        assert (seen, result) == ([(0, 0)], 0)
    else:
        assert seen[-1] == (1, 1) and result == 1, seen


def test_concurrent_creates_have_exactly_one_winner(document_store: DocumentStore, unique: str) -> None:
    """Create-if-absent under a race (a redelivered event processed twice at once)."""
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def create(worker: int) -> None:
        barrier.wait()
        results.append(document_store.create("things", unique, {"winner": worker}))

    threads = [threading.Thread(target=create, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    stored = document_store.get("things", unique)
    assert stored is not None and stored["winner"] in range(4)


def test_transaction_create_then_read_back_nested_and_none_values(document_store: DocumentStore, unique: str) -> None:
    data = {"status": "PENDING", "steps": {"quota": {"done": False, "error": None}}, "generation": 1}

    def create(txn: Transaction) -> None:
        assert txn.get("tenants_test", unique) is None
        txn.create("tenants_test", unique, data)

    document_store.run_transaction(create)
    assert document_store.get("tenants_test", unique) == data


def test_finding10_a_read_of_a_deleted_and_recreated_document_is_stale(document_store: DocumentStore, unique: str) -> None:
    """Delete and re-create between our read and our commit: the precondition on what we read must fail.

    Firestore compares update times, which a re-created document never shares with the old one;
    the embedded store must not restart a document's revision after a delete either, or a
    transaction that read the old document commits over the new one.
    """

    def recreate() -> None:
        document_store.delete("counters", unique)
        document_store.set("counters", unique, {"n": 100})

    _bump_with_interference(document_store, unique, recreate)


def _ids(page: Page) -> list[str]:
    return [doc_id for doc_id, _ in page.items]


def test_finding9_page_walks_an_ordered_collection_without_gaps_or_repeats(document_store: DocumentStore, unique: str) -> None:
    """Ordered by a field then by id, pages of 3 cover every matching document exactly once."""
    collection = f"paged_{unique}"
    for n in range(8):
        document_store.set(collection, f"d{n}", {"owner": "a" if n != 5 else "b", "at": f"2026-01-0{n % 4 + 1}"})
    document_store.set(collection, "no_field", {"owner": "a"})
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = document_store.page(collection, "at", where=("owner", "a"), limit=3, after=after)
        assert len(page.items) <= 3
        seen += _ids(page)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen == ["d0", "d4", "d1", "d2", "d6", "d3", "d7"]


def test_finding9_page_descending_and_the_last_page_has_no_cursor(document_store: DocumentStore, unique: str) -> None:
    collection = f"paged_{unique}"
    for n in range(4):
        document_store.set(collection, f"d{n}", {"at": f"2026-01-0{n + 1}"})
    first = document_store.page(collection, "at", descending=True, limit=2)
    assert _ids(first) == ["d3", "d2"] and first.next_cursor is not None
    second = document_store.page(collection, "at", descending=True, limit=2, after=first.next_cursor)
    assert _ids(second) == ["d1", "d0"] and second.next_cursor is None
    assert document_store.page(f"empty_{unique}", "at", limit=2) == Page()


def test_page_with_several_equality_filters_keeps_only_documents_matching_all(document_store: DocumentStore, unique: str) -> None:
    """Two `==` filters and an order on a third field, paged with a cursor (Firestore: a composite index)."""
    collection = f"filtered_{unique}"
    for n in range(12):
        document_store.set(collection, f"d{n:02d}", {"status": ("A", "B")[n % 2], "plan": ("X", "Y", "Z")[n % 3], "at": f"t{n:02d}"})
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = document_store.page(collection, "at", where={"status": "A", "plan": "X"}, descending=True, limit=1, after=after)
        seen += _ids(page)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen == ["d06", "d00"]
    assert _ids(document_store.page(collection, "at", where={"status": "B", "plan": "Z"}, limit=5)) == ["d05", "d11"]
    assert document_store.page(collection, "at", where={"status": "A", "plan": "nothing"}, limit=5) == Page()


def test_finding8_expire_at_round_trips_and_orders_as_time(document_store: DocumentStore, unique: str) -> None:
    """`expire_at` is stored as a timestamp where TTL needs one, and read back as the same ISO string."""
    collection = f"expiring_{unique}"
    document_store.set(collection, "late", {EXPIRE_AT: "2026-03-01T00:00:00.000Z"})
    document_store.create(collection, "early", {EXPIRE_AT: "2026-02-01T00:00:00.000Z"})
    assert document_store.get(collection, "late") == {EXPIRE_AT: "2026-03-01T00:00:00.000Z"}
    page = document_store.page(collection, EXPIRE_AT, limit=1)
    assert _ids(page) == ["early"] and page.next_cursor is not None
    assert _ids(document_store.page(collection, EXPIRE_AT, limit=1, after=page.next_cursor)) == ["late"]


def _bump_with_interference(document_store: DocumentStore, unique: str, interfere: Callable[[], None]) -> None:
    """Increment a counter in a transaction while `interfere` writes it (to 100) between the first read and the commit.

    Either the interfering write is refused and our increment lands on 0, or it lands and our
    transaction re-runs on what it wrote: never an increment of the stale read over it.
    """
    document_store.set("counters", unique, {"n": 0})
    seen: list[int] = []
    refused: list[BackendError] = []

    def bump(txn: Transaction) -> None:
        current = txn.get("counters", unique)
        assert current is not None
        seen.append(current["n"])
        if len(seen) == 1:
            try:
                interfere()
            except BackendError as error:
                refused.append(error)
        txn.set("counters", unique, {"n": current["n"] + 1})

    document_store.run_transaction(bump)
    if refused:
        assert seen == [0]
        assert document_store.get("counters", unique) == {"n": 1}
    else:
        assert seen[:2] == [0, 100]
        assert document_store.get("counters", unique) == {"n": 101}
