"""Reversible pseudonymization: the vault, its store, and a multi-turn round trip."""

from __future__ import annotations

import threading

import pytest

from tether.guards._base import GuardContext
from tether.guards._pii import PiiGuard, PiiParams
from tether.guards._vault import PseudonymVault, VaultStore
from tether.pipeline import apply_spans


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_same_value_same_placeholder_numbered_per_kind() -> None:
    vault = PseudonymVault()
    assert vault.placeholder("EMAIL", "alice@x.com") == "<EMAIL_1>"
    assert vault.placeholder("EMAIL", "Alice@X.com") == "<EMAIL_1>"  # same value, any case
    assert vault.placeholder("EMAIL", "bob@x.com") == "<EMAIL_2>"
    assert vault.placeholder("PERSON", "Alice Smith") == "<PERSON_1>"
    assert vault.placeholder("PHONE", "(415) 555-2671", "+14155552671") == "<PHONE_1>"
    assert vault.placeholder("PHONE", "415.555.2671", "+14155552671") == "<PHONE_1>"
    assert vault.value("<EMAIL_1>") == "alice@x.com"  # restored as first written
    assert vault.items()[:2] == [("<EMAIL_1>", "alice@x.com"), ("<EMAIL_2>", "bob@x.com")]
    assert len(vault) == 4


@pytest.mark.parametrize(
    "written",
    [
        "<PERSON_1>",
        "<person_1>",
        "< PERSON_1 >",
        "<PERSON 1>",
        "<Person-1>",
        "[PERSON_1]",
        "&lt;PERSON_1&gt;",
        "＜PERSON_1＞",
        "PERSON_1",
    ],
)
def test_restore_is_lenient_about_how_the_model_writes_a_placeholder(written: str) -> None:
    vault = PseudonymVault()
    vault.placeholder("PERSON", "Alice Smith")
    assert vault.restore(f"Hello {written}!") == "Hello Alice Smith!"


def test_restore_handles_multiword_labels_and_leaves_unknown_ones() -> None:
    vault = PseudonymVault()
    vault.placeholder("CREDIT_CARD", "4111 1111 1111 1111", "4111111111111111")
    text = "Card <credit card 1>, <CREDIT_CARD_2>, <EMAIL_1>, [EMAIL], person_1, <b>bold</b>"
    assert vault.restore(text) == (
        "Card 4111 1111 1111 1111, <CREDIT_CARD_2>, <EMAIL_1>, [EMAIL], person_1, <b>bold</b>"
    )
    assert PseudonymVault().restore("nothing <PERSON_1> here") == "nothing <PERSON_1> here"


def test_conceal_replaces_every_known_value() -> None:
    vault = PseudonymVault()
    vault.placeholder("PERSON", "Alice Smith", aliases=["Alice", "Smith"])
    vault.placeholder("EMAIL", "alice@x.com")
    history = "Sure Alice Smith, I wrote to ALICE@X.COM. Alice, anything else? (malice aside)"
    assert vault.conceal(history) == (
        "Sure <PERSON_1>, I wrote to <EMAIL_1>. <PERSON_1>, anything else? (malice aside)"
    )


def test_aliases_shared_by_two_people_are_not_used() -> None:
    vault = PseudonymVault()
    vault.placeholder("PERSON", "Alice Smith", aliases=["Alice", "Smith"])
    vault.placeholder("PERSON", "Alice Jones", aliases=["Alice", "Jones"])
    assert vault.lookup("PERSON", "jones") == "<PERSON_2>"
    assert vault.lookup("PERSON", "alice") is None  # which Alice? neither
    assert vault.conceal("Alice and Jones") == "Alice and <PERSON_2>"


def test_pseudonymize_with_matches() -> None:
    from tether.guards._pii import find_pii

    vault = PseudonymVault()
    text = "I'm Alice Smith, alice@x.com"
    assert vault.pseudonymize(text, find_pii(text)) == "I'm <PERSON_1>, <EMAIL_1>"


def test_full_vault_redacts_instead() -> None:
    vault = PseudonymVault(max_entries=1)
    assert vault.placeholder("EMAIL", "a@x.com") == "<EMAIL_1>"
    assert vault.placeholder("EMAIL", "b@x.com") is None
    assert vault.placeholder("EMAIL", "a@x.com") == "<EMAIL_1>"  # known values still work
    from tether.guards._pii import find_pii

    text = "a@x.com and b@x.com"
    assert vault.pseudonymize(text, find_pii(text)) == "<EMAIL_1> and [EMAIL]"


def test_stream_restorer_holds_back_split_placeholders() -> None:
    vault = PseudonymVault()
    vault.placeholder("PERSON", "Alice Smith")
    vault.placeholder("EMAIL", "alice@x.com")
    chunks = ["Dear <PER", "SON_1>, we wrote to <", "EMAIL_1", "> and PERSON", "_1 again."]
    restorer = vault.restorer()
    shown = [restorer.feed(c) for c in chunks] + [restorer.flush()]
    assert "".join(shown) == "Dear Alice Smith, we wrote to alice@x.com and Alice Smith again."
    assert all("<" not in part for part in shown)  # nothing half-restored ever shown


def test_store_is_bounded_lru_and_ttl() -> None:
    clock = Clock()
    store = VaultStore(max_conversations=2, ttl_s=60, clock=clock)
    a = store.get("a")
    a.placeholder("EMAIL", "a@x.com")
    assert store.get("a") is a
    store.get("b")
    store.get("a")  # a is now the most recently used
    store.get("c")  # evicts b
    assert "b" not in store and "a" in store and len(store) == 2
    clock.now = 61
    assert len(store) == 0  # idle too long
    assert store.get("a") is not a and len(store.get("a")) == 0
    store.drop("a")
    assert "a" not in store


def test_store_without_conversation_id_gives_a_fresh_unstored_vault() -> None:
    store = VaultStore()
    assert store.get(None) is not store.get(None)
    assert len(store) == 0


def test_vault_is_thread_safe() -> None:
    vault = PseudonymVault()
    results: list[list[str | None]] = []

    def worker(offset: int) -> None:
        results.append(
            [vault.placeholder("EMAIL", f"user{(i + offset) % 50}@x.com") for i in range(500)]
        )

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Every thread got a placeholder for every call, and each value exactly one of 50.
    assert all(p is not None for row in results for p in row)
    assert len(vault) == 50
    assert {p for p, _ in vault.items()} == {f"<EMAIL_{n}>" for n in range(1, 51)}
    assert len({v for _, v in vault.items()}) == 50


async def test_multi_turn_round_trip_through_the_guard() -> None:
    """Turn 1: the model sees placeholders, the user sees their data; turn 2 mentions Alice
    again and gets the same placeholder, and the history is concealed the same way."""
    store = VaultStore()
    guard = PiiGuard(PiiParams(mode="pseudonymize"))

    # Turn 1: the user's message is pseudonymized by the guard's spans.
    vault = store.get("conv-1")
    user_1 = "I'm Alice Smith, alice@x.com"
    verdict = await guard.check(user_1, GuardContext(stage="input", metadata={"vault": vault}))
    model_sees_1 = apply_spans(user_1, verdict.spans)
    assert model_sees_1 == "I'm <PERSON_1>, <EMAIL_1>"
    reply_1 = "Thanks < PERSON_1 >! I will write to <email_1>."
    out = await guard.check(reply_1, GuardContext(stage="output", metadata={"vault": vault}))
    assert not out.flagged  # placeholders are not personal data
    user_sees_1 = vault.restore(reply_1)
    assert user_sees_1 == "Thanks Alice Smith! I will write to alice@x.com."

    # Turn 2: the client sends the history as the user saw it; the same vault comes back.
    vault = store.get("conv-1")
    history = [user_1, user_sees_1]
    assert [vault.conceal(m) for m in history] == [
        "I'm <PERSON_1>, <EMAIL_1>",
        "Thanks <PERSON_1>! I will write to <EMAIL_1>.",
    ]
    user_2 = "Actually, Alice Smith moved. Alice also has bob@x.com now."
    verdict = await guard.check(user_2, GuardContext(stage="input", metadata={"vault": vault}))
    model_sees_2 = apply_spans(user_2, verdict.spans)
    assert model_sees_2 == "Actually, <PERSON_1> moved. <PERSON_1> also has <EMAIL_2> now."
    assert vault.restore("Noted, <PERSON_1>: <EMAIL_2>.") == "Noted, Alice Smith: bob@x.com."

    # Another conversation has its own vault: nothing leaks across.
    other = store.get("conv-2")
    assert other.restore("<PERSON_1>") == "<PERSON_1>"
