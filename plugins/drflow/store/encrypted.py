"""Client-side encryption of a store's backup objects: AES-256-GCM, streamed in authenticated chunks.

:class:`EncryptedStore` wraps any store. Every object of a backup (``<spec>/<component>/backups/<id>/<name>``)
is encrypted before it leaves the worker; manifests and reports stay readable, so the catalog can be
listed without the key, and a manifest records only the algorithm and the key id (see
:mod:`drflow.store.keys`), never the key.

Object format::

    header  = b"DRFLOWE1" | key fingerprint (8 bytes) | nonce prefix (8 random bytes) | chunk size (4 bytes)
    chunk i = AES-256-GCM(key, nonce = prefix | i (4 bytes), aad = header | i (8 bytes) | final flag)

Chunks hold ``chunk size`` bytes of plaintext except the last, which holds fewer (possibly none) and
is flagged final, so a truncated, reordered or spliced object fails authentication. The plaintext size
follows from the stored size, so a store's size check works on either side. A wrong key is named from
the header before anything is decrypted or written.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from drflow.store.base import CHUNK_SIZE, BackupStore, StoreError
from drflow.store.keys import EncryptionKey, KeyRef, load_key
from drflow.store.manifest import is_backup_object

ALGORITHM = "AES-256-GCM"
MAGIC = b"DRFLOWE1"
TAG_BYTES = 16
_HEADER = struct.Struct(">8s8s8sI")
HEADER_BYTES = _HEADER.size
ENCRYPTED_CHUNK = 4 * 1024 * 1024
_MAX_CHUNK = 64 * 1024 * 1024


class DecryptionError(StoreError):
    """An object cannot be decrypted: another key, or the object was altered; the message says which."""


class ChunkCipher:
    """Encrypts or decrypts one object with one key."""

    def __init__(self, key: EncryptionKey, chunk_size: int = ENCRYPTED_CHUNK) -> None:
        self.key = key
        self.chunk_size = chunk_size
        self._aead = AESGCM(key.key)

    def encrypt(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The encrypted object, header first, from the plaintext in pieces of any size."""
        header = _HEADER.pack(MAGIC, bytes.fromhex(self.key.fingerprint), os.urandom(8), self.chunk_size)
        yield header
        index = 0
        buffer = bytearray()
        for piece in chunks:
            buffer += piece
            while len(buffer) >= self.chunk_size:
                yield self._seal(header, index, bytes(buffer[: self.chunk_size]), final=False)
                del buffer[: self.chunk_size]
                index += 1
        yield self._seal(header, index, bytes(buffer), final=True)

    def decrypt(self, chunks: Iterable[bytes], where: str) -> Iterator[bytes]:
        """The plaintext, chunk by chunk, each authenticated before it is yielded."""
        buffer = bytearray()
        header: bytes | None = None
        size = 0
        index = 0
        for piece in chunks:
            buffer += piece
            if header is None:
                if len(buffer) < HEADER_BYTES:
                    continue
                header = bytes(buffer[:HEADER_BYTES])
                size = self._check_header(header, where) + TAG_BYTES
                del buffer[:HEADER_BYTES]
            while len(buffer) >= size:  # a chunk of full size is never the final one
                yield self._open(header, index, bytes(buffer[:size]), final=False, where=where)
                del buffer[:size]
                index += 1
        if header is None or len(buffer) < TAG_BYTES:
            raise DecryptionError(
                f"{where} is truncated or not an encrypted drflow object; restore another copy of the backup"
            )
        yield self._open(header, index, bytes(buffer), final=True, where=where)

    def _seal(self, header: bytes, index: int, data: bytes, *, final: bool) -> bytes:
        return self._aead.encrypt(_nonce(header, index), data, _aad(header, index, final))

    def _open(self, header: bytes, index: int, data: bytes, *, final: bool, where: str) -> bytes:
        try:
            return self._aead.decrypt(_nonce(header, index), data, _aad(header, index, final))
        except InvalidTag:
            raise DecryptionError(
                f"{where} fails authentication at chunk {index}: it was altered, truncated or damaged "
                f"(the key {self.key.key_id} matches its header); restore another copy of the backup"
            ) from None

    def _check_header(self, header: bytes, where: str) -> int:
        magic, fingerprint, _, chunk_size = _HEADER.unpack(header)
        if magic != MAGIC:
            raise DecryptionError(
                f"{where} is not a drflow-encrypted object; if the target was not encrypted when this backup "
                f"was taken, restore it with a target definition without client_encryption"
            )
        if fingerprint.hex() != self.key.fingerprint:
            raise DecryptionError(
                f"{where} was encrypted with another key (fingerprint {fingerprint.hex()}) than {self.key.key_id}; "
                f"put the key the backup was taken with into {self.key.ref} (its manifest names it) and retry"
            )
        if not 0 < chunk_size <= _MAX_CHUNK:
            raise DecryptionError(f"{where} has a damaged header (chunk size {chunk_size}); restore another copy")
        return int(chunk_size)

    def plain_size(self, stored: int) -> int:
        """The plaintext size of an object stored in ``stored`` bytes (the format fixes it)."""
        body = stored - HEADER_BYTES
        full, rest = divmod(body, self.chunk_size + TAG_BYTES)
        return full * self.chunk_size + max(rest - TAG_BYTES, 0)


def _nonce(header: bytes, index: int) -> bytes:
    return header[16:24] + struct.pack(">I", index)


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">QB", index, 1 if final else 0)


def _file_chunks(path: Path, chunk_size: int = ENCRYPTED_CHUNK) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            yield chunk


class EncryptedStore(BackupStore):
    """A store whose backup objects are encrypted client-side with one key; see the module docstring."""

    def __init__(self, inner: BackupStore, key_ref: KeyRef, *, chunk_size: int = ENCRYPTED_CHUNK) -> None:
        self.inner = inner
        self.key_ref = key_ref
        self.chunk_size = chunk_size
        self._cipher: ChunkCipher | None = None

    @property
    def cipher(self) -> ChunkCipher:
        """Made on first use: listing the catalog needs no key."""
        if self._cipher is None:
            self._cipher = ChunkCipher(load_key(self.key_ref), self.chunk_size)
        return self._cipher

    def describe(self) -> str:
        return self.inner.describe()

    def preflight(self) -> None:
        self.inner.preflight()

    def lock_record(self) -> dict[str, str] | None:
        return self.inner.lock_record()

    def client_key_id(self) -> str | None:
        return self.cipher.key.key_id

    def encryption_records(self) -> list[dict[str, str]]:
        return [
            *self.inner.encryption_records(),
            {"layer": "client", "algorithm": ALGORITHM, "key_id": self.cipher.key.key_id},
        ]

    def put_file(self, key: str, path: Path) -> None:
        if not is_backup_object(key):
            self.inner.put_file(key, path)
            return
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"cannot store {path} as {self.url_for(key)}: the source file does not exist")
        fd, tmp_name = tempfile.mkstemp(prefix=".drflow-enc-", dir=path.parent)
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    for block in self.cipher.encrypt(_file_chunks(path)):
                        out.write(block)
            except OSError as exc:
                raise StoreError(
                    f"cannot encrypt {path} for {self.url_for(key)}: {exc}; check the free space next to it"
                ) from exc
            self.inner.put_file(key, Path(tmp_name))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)

    def put_bytes(self, key: str, data: bytes) -> None:
        if not is_backup_object(key):
            self.inner.put_bytes(key, data)
            return
        self.inner.put_bytes(key, b"".join(self.cipher.encrypt([data])))

    def get_file(self, key: str, path: Path) -> None:
        if not is_backup_object(key):
            self.inner.get_file(key, path)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".drflow-tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                for block in self.iter_chunks(key):
                    out.write(block)
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise

    def get_bytes(self, key: str) -> bytes:
        if not is_backup_object(key):
            return self.inner.get_bytes(key)
        return b"".join(self.iter_chunks(key))

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        if not is_backup_object(key):
            yield from self.inner.iter_chunks(key, chunk_size)
            return
        cipher = self.cipher  # a missing key is reported before anything is read
        yield from cipher.decrypt(self.inner.iter_chunks(key, chunk_size), self.url_for(key))

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list_keys(self, prefix: str = "") -> list[str]:
        return self.inner.list_keys(prefix)

    def delete(self, key: str) -> bool:
        return self.inner.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        return self.inner.delete_prefix(prefix)

    def size(self, key: str) -> int:
        stored = self.inner.size(key)
        return self.cipher.plain_size(stored) if is_backup_object(key) else stored

    def __repr__(self) -> str:
        return f"EncryptedStore({self.inner!r}, {self.key_ref.ref})"
