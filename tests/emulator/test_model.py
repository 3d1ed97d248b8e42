"""Contacts for the emulator: generated deterministically, or loaded from a CSV."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bulktag.emulator import generate_contacts, load_contacts, parse_key_spec


def test_generated_contacts_are_deterministic() -> None:
    """Same seed, same UUIDs, names and tags; another seed, other contacts."""
    first = list(generate_contacts(50, seed=5))
    again = list(generate_contacts(50, seed=5))
    other = list(generate_contacts(50, seed=6))
    assert first == again
    assert [c.id for c in first] != [c.id for c in other]
    assert all(uuid.UUID(c.id).version == 4 for c in first)
    assert len({c.id for c in first}) == 50
    assert any(c.tags for c in first)
    assert any(not c.tags for c in first)


def test_load_contacts_reads_the_export_format(tmp_path: Path) -> None:
    """id, full_name, email and a comma-joined tags cell are enough; the id is canonicalised."""
    path = tmp_path / "crm.csv"
    path.write_text(
        "id,full_name,email,tags\n"
        '123E4567-E89B-12D3-A456-426614174000,Ann,ann@example.com,"a, b,a"\n',
        encoding="utf-8",
    )
    (contact,) = load_contacts(path)
    assert contact.id == "123e4567-e89b-12d3-a456-426614174000"
    assert contact.tags == ["a", "b"]


def test_load_contacts_names_missing_columns(tmp_path: Path) -> None:
    """A contacts file without the required columns says which are missing."""
    path = tmp_path / "crm.csv"
    path.write_text("id,name\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['email', 'full_name', 'tags'\]"):
        list(load_contacts(path))


def test_load_contacts_names_the_line_of_a_bad_id(tmp_path: Path) -> None:
    """An id that is not a UUID is reported with its line."""
    path = tmp_path / "crm.csv"
    path.write_text("id,full_name,email,tags\nnope,A,a@x,\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"crm.csv:2: id 'nope' is not a UUID"):
        list(load_contacts(path))


def test_key_spec_parses_permissions_and_workspace() -> None:
    """KEY:PERMS[@WORKSPACE], with empty permissions allowed; the repr hides the secret."""
    key = parse_key_spec("wbk_s3cret:read,write@acme")
    assert (key.workspace, key.permissions) == ("acme", frozenset({"read", "write"}))
    assert parse_key_spec("wbk_x:").permissions == frozenset()
    assert "s3cret" not in repr(key)
