"""Client-side encryption's object format: round trips at every size edge, and every tampering refused."""

from __future__ import annotations

import os

import pytest

from drflow.store.encrypted import HEADER_BYTES, TAG_BYTES, ChunkCipher, DecryptionError, is_backup_object
from drflow.store.keys import EncryptionKey, EncryptionKeyError, parse_key

CHUNK = 1024


def _key(byte: int = 1) -> EncryptionKey:
    return EncryptionKey("variable:test_key", bytes([byte]) * 32)


def _encrypt(data: bytes, key: EncryptionKey | None = None) -> bytes:
    return b"".join(ChunkCipher(key or _key(), CHUNK).encrypt([data[i : i + 700] for i in range(0, len(data), 700)]))


def _decrypt(blob: bytes, key: EncryptionKey | None = None, piece: int = 333) -> bytes:
    cipher = ChunkCipher(key or _key(), CHUNK)
    return b"".join(cipher.decrypt([blob[i : i + piece] for i in range(0, len(blob), piece)], "s3://b/obj"))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17])
def test_round_trip_and_plain_size_at_every_edge(size: int) -> None:
    data = os.urandom(size)
    blob = _encrypt(data)
    # The plaintext never shows in the blob; below 16 bytes a random match in the ciphertext is likely, not a leak.
    assert data not in blob or size < 16
    assert _decrypt(blob) == data
    assert ChunkCipher(_key(), CHUNK).plain_size(len(blob)) == size
    assert len(blob) == HEADER_BYTES + size + TAG_BYTES * (size // CHUNK + 1)


def test_same_plaintext_encrypts_differently_each_time() -> None:
    data = os.urandom(5000)
    assert _encrypt(data) != _encrypt(data)


def test_a_flipped_byte_is_refused_naming_the_chunk() -> None:
    blob = bytearray(_encrypt(os.urandom(3 * CHUNK)))
    blob[HEADER_BYTES + CHUNK + TAG_BYTES + 5] ^= 1  # in chunk 1
    with pytest.raises(DecryptionError, match="chunk 1.*altered"):
        _decrypt(bytes(blob))


@pytest.mark.parametrize("cut", [TAG_BYTES, CHUNK + TAG_BYTES])
def test_truncation_at_a_chunk_boundary_is_refused(cut: int) -> None:
    blob = _encrypt(os.urandom(3 * CHUNK + 10))
    with pytest.raises(DecryptionError):
        _decrypt(blob[: len(blob) - (10 + cut)])


def test_reordered_chunks_are_refused() -> None:
    blob = _encrypt(os.urandom(3 * CHUNK))
    step = CHUNK + TAG_BYTES
    body = blob[HEADER_BYTES:]
    swapped = blob[:HEADER_BYTES] + body[step : 2 * step] + body[:step] + body[2 * step :]
    with pytest.raises(DecryptionError, match="chunk 0"):
        _decrypt(swapped)


def test_another_key_is_named_from_the_header_before_any_chunk() -> None:
    blob = _encrypt(os.urandom(100), _key(1))
    with pytest.raises(DecryptionError, match="another key.*variable:test_key"):
        _decrypt(blob, _key(2))


def test_plain_data_is_not_mistaken_for_an_encrypted_object() -> None:
    with pytest.raises(DecryptionError, match="not a drflow-encrypted object"):
        _decrypt(os.urandom(200))


def test_keys_are_parsed_from_base64_or_hex_and_anything_else_is_refused() -> None:
    raw = os.urandom(32)
    import base64

    assert parse_key(base64.b64encode(raw).decode() + "\n", "variable:k").key == raw
    assert parse_key(raw.hex(), "variable:k").key == raw
    with pytest.raises(EncryptionKeyError, match="openssl rand -base64 32"):
        parse_key("correct horse battery staple", "variable:k")
    assert raw.hex() not in repr(parse_key(raw.hex(), "variable:k"))


def test_only_backup_objects_are_encrypted() -> None:
    assert is_backup_object("spec/comp/backups/20261127T000000Z-p/base.tar.zst")
    assert is_backup_object("spec/comp/backups/20261127T000000Z-p/wal/000000010000000000000002")
    assert not is_backup_object("spec/comp/backups/20261127T000000Z-p/manifest.json")
    assert not is_backup_object("spec/comp/reports/drill/x.json")
