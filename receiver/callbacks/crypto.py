"""The callback cipher WeCom and DingTalk share: SHA-1 signature, AES-256-CBC, 32-byte PKCS#7 framing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, NamedTuple

import pybase64
from Crypto.Cipher import AES

from handlers.errors import ConfigError
from receiver.errors import Base64Error, BufferError_, DecryptError, IllegalAesKey, ReceiveIdError, SignatureError

__all__ = ["CallbackCipher", "Opened", "Sealed", "new_nonce"]

_KEY_SHAPE = re.compile(r"[A-Za-z0-9]{43}")
_BLOCK = 32  # PKCS#7 block of both platforms; AES itself still works on 16-byte blocks
_AES_BLOCK = 16
_PADS = tuple(bytes([n]) * n for n in range(_BLOCK + 1))
_LENGTH = struct.Struct(">I")
# Plaintext layout: [16 random][4 msg_len][msg][receive_id][pad]
_MSG_LEN_AT = 16
_MSG_AT = 20
# The last base64 digit before "=" / "==" may only carry zero bits in canonical output.
_CANONICAL_BEFORE_ONE_PAD = frozenset("AEIMQUYcgkosw048")
_CANONICAL_BEFORE_TWO_PADS = frozenset("AQgw")
_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_UNBIASED_BELOW = 256 - 256 % len(_ALPHANUMERIC)


class Opened(NamedTuple):
    """A verified, decrypted callback. ``message`` is personal data: it is kept out of the repr."""

    message: bytes
    receive_id: str

    def __repr__(self) -> str:
        return f"Opened(message=<{len(self.message)} bytes>, receive_id={self.receive_id!r})"


@dataclass(frozen=True, slots=True)
class Sealed:
    """An encrypted, signed message, ready to be put in a reply envelope."""

    encrypt: str
    signature: str
    timestamp: str
    nonce: str


@dataclass(frozen=True, slots=True)
class _RawApi:
    """pycryptodome's C functions that its public ECB mode and strxor wrap (private names: see _working_raw_api)."""

    ecb_decrypt: Callable[[Any, bytes, Any, int], int]
    strxor: Callable[[Any, bytes, Any, int], None]
    c_uint8_ptr: Callable[[bytearray], Any]


def _load_raw_api() -> _RawApi | None:
    try:
        from Crypto.Cipher._mode_ecb import raw_ecb_lib
        from Crypto.Util._raw_api import c_uint8_ptr
        from Crypto.Util.strxor import _raw_strxor
    except ImportError:
        return None
    return _RawApi(raw_ecb_lib.ECB_decrypt, _raw_strxor.strxor, c_uint8_ptr)


class _Output(threading.local):
    """This thread's plaintext buffer, which the C code of _RawCbc writes into (with the GIL released)."""

    def __init__(self, pointer: Callable[[bytearray], Any]) -> None:
        self._pointer = pointer
        self.slot: tuple[int, bytearray, Any] = (0, bytearray(), None)  # capacity, buffer, C pointer to it

    def grow(self, size: int) -> tuple[int, bytearray, Any]:
        capacity = max(4096, 1 << (size - 1).bit_length())
        buf = bytearray(capacity)
        self.slot = (capacity, buf, self._pointer(buf))
        return self.slot


class _RawCbc:
    """AES-256-CBC decryption through pycryptodome's C functions, without its per-call Python wrapper.

    The wrapper costs more than the AES work on a callback-sized message. Here the key schedule is made
    once, and a decryption is two C calls into this thread's buffer: every block through AES (ECB, which
    the AES-NI code pipelines), then the CBC chaining, P[i] = D(C[i]) xor C[i-1] with C[-1] = IV. No
    state changes between calls, so one object serves every thread.
    """

    __slots__ = ("_ecb", "_ecb_decrypt", "_iv", "_out", "_state", "_strxor")

    def __init__(self, key: bytes, api: _RawApi) -> None:
        self._ecb_decrypt = api.ecb_decrypt
        self._strxor = api.strxor
        self._iv = key[:_AES_BLOCK]
        self._ecb = AES.new(key, AES.MODE_ECB)  # owns the key schedule for as long as this object lives
        self._state = self._ecb._state.get()
        self._out = _Output(api.c_uint8_ptr)

    def decrypt(self, ciphertext: bytes) -> bytearray:
        """Plaintext of ``ciphertext`` (a positive multiple of 16 bytes) in the first len() bytes of the result.

        The result is this thread's buffer: read what is needed before the next decryption on this thread.
        """
        size = len(ciphertext)
        capacity, buf, ptr = self._out.slot
        if size > capacity:
            capacity, buf, ptr = self._out.grow(size)
        if self._ecb_decrypt(self._state, ciphertext, ptr, size):
            raise DecryptError("AES decryption failed")
        self._strxor(ptr, self._iv + ciphertext[:-_AES_BLOCK], ptr, size)
        return buf


class _PlainCbc:
    """The same through pycryptodome's public API: used only if its C functions are not where _RawCbc looks."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def decrypt(self, ciphertext: bytes) -> bytearray:
        return bytearray(AES.new(self._key, AES.MODE_CBC, iv=self._key[:_AES_BLOCK]).decrypt(ciphertext))


def _working_raw_api() -> _RawApi | None:
    """pycryptodome's C functions, if they are where _RawCbc looks and agree with its public CBC on a known message."""
    api = _load_raw_api()
    if api is None:
        return None
    key = bytes(range(32))
    message = bytes(range(64)) * 2
    ciphertext = AES.new(key, AES.MODE_CBC, iv=key[:_AES_BLOCK]).encrypt(message)
    try:
        agrees = bytes(_RawCbc(key, api).decrypt(ciphertext)[: len(message)]) == message
    except Exception:  # whatever went wrong, the public API is the safe choice
        return None
    return api if agrees else None


_RAW_API = _working_raw_api()


class CallbackCipher:
    """Signs, verifies, encrypts and decrypts callbacks for one token and EncodingAESKey. Pure: no I/O."""

    __slots__ = ("_cbc", "_iv", "_key", "_random_bytes", "_token")

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        *,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if not _KEY_SHAPE.fullmatch(encoding_aes_key):
            raise IllegalAesKey("EncodingAESKey must be exactly 43 characters of A-Z, a-z, 0-9")
        if not token:
            raise ConfigError("callback token must not be empty")
        # 43 base64 digits carry 258 bits; the two spare bits are ignored, as every vendor sample does.
        key = base64.b64decode(encoding_aes_key + "=")
        if len(key) != 32:  # cannot happen for 43 digits; kept because the key is the whole security
            raise IllegalAesKey("EncodingAESKey must decode to 32 bytes")
        self._token = token
        self._key = key
        self._iv = key[:16]
        self._random_bytes = random_bytes
        self._cbc: _RawCbc | _PlainCbc = _RawCbc(key, _RAW_API) if _RAW_API else _PlainCbc(key)

    def __repr__(self) -> str:
        return "CallbackCipher(<secret>)"

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        """Lower-case hex SHA-1 of the token, timestamp, nonce and ciphertext, sorted and concatenated."""
        joined = "".join(sorted((self._token, timestamp, nonce, encrypted)))
        digest = hashlib.sha1(joined.encode("utf-8", "surrogatepass"))  # noqa: S324 - the vendors' scheme
        return digest.hexdigest()

    def verify(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        """Raise SignatureError unless ``signature`` signs the other three values (constant time)."""
        if not signature or not signature.isascii():
            raise SignatureError("missing or malformed signature")
        if not hmac.compare_digest(signature, self.signature(timestamp, nonce, encrypted)):
            raise SignatureError("signature does not match")

    def decrypt(self, encrypted: str) -> tuple[bytes, str]:
        """Return (message, receive_id) from a base64 ciphertext, checking every length and pad byte."""
        try:  # strict: only the 64 digits, whole groups of 4, '=' only as the last one or two (SIMD, in C)
            raw = pybase64.b64decode(encrypted, validate=True)
        except ValueError as exc:  # binascii.Error (a ValueError), for non-ASCII text too
            raise Base64Error("ciphertext is not standard padded base64") from exc
        if encrypted[-1:] == "=" and not _is_canonical(encrypted):
            raise Base64Error("ciphertext base64 is not canonical")
        size = len(raw)
        if size < _BLOCK or size % 16:
            raise DecryptError("ciphertext length must be a multiple of 16 and at least 32")
        plain = self._cbc.decrypt(raw)  # only the first `size` bytes are this message's
        pad = plain[size - 1]
        if pad == 0 or pad > _BLOCK or not plain.endswith(_PADS[pad], 0, size):
            raise DecryptError("bad PKCS#7 padding")
        end = size - pad
        if end < _MSG_AT:
            raise BufferError_("plaintext shorter than its 20-byte header")
        msg_end = _MSG_AT + _LENGTH.unpack_from(plain, _MSG_LEN_AT)[0]
        if msg_end > end:
            raise BufferError_("message length field exceeds the plaintext")
        try:
            receive_id = plain[msg_end:end].decode()
        except UnicodeDecodeError as exc:
            raise BufferError_("receive-id is not UTF-8") from exc
        return bytes(plain[_MSG_AT:msg_end]), receive_id

    def encrypt(self, message: bytes, receive_id: str, *, random16: bytes | None = None) -> str:
        """Base64 AES-CBC of random16 + length + message + receive_id, padded to 32 bytes."""
        if random16 is None:
            random16 = self._random_bytes(16)
        if len(random16) != 16:
            raise ValueError("random16 must be exactly 16 bytes")
        body = b"".join((random16, _LENGTH.pack(len(message)), message, receive_id.encode()))
        padded = body + _PADS[_BLOCK - len(body) % _BLOCK]
        ciphertext: bytes = AES.new(self._key, AES.MODE_CBC, iv=self._iv).encrypt(padded)
        return base64.b64encode(ciphertext).decode("ascii")

    def open(
        self,
        signature: str,
        timestamp: str,
        nonce: str,
        encrypted: str,
        allowed_receive_ids: Collection[str],
    ) -> Opened:
        """Verify, then decrypt, then check the receive-id against the set allowed for the endpoint."""
        self.verify(signature, timestamp, nonce, encrypted)
        message, receive_id = self.decrypt(encrypted)
        if receive_id not in allowed_receive_ids:
            raise ReceiveIdError("receive-id not allowed on this endpoint")
        return Opened(message, receive_id)

    def seal(
        self,
        message: bytes,
        receive_id: str,
        timestamp: str,
        nonce: str,
        *,
        random16: bytes | None = None,
    ) -> Sealed:
        """Encrypt ``message`` for ``receive_id`` and sign it with the given timestamp and nonce."""
        encrypted = self.encrypt(message, receive_id, random16=random16)
        return Sealed(encrypted, self.signature(timestamp, nonce, encrypted), timestamp, nonce)


def new_nonce(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """16 random letters and digits, without modulo bias."""
    chars: list[str] = []
    while len(chars) < 16:
        chars.extend(_ALPHANUMERIC[b % len(_ALPHANUMERIC)] for b in random_bytes(16) if b < _UNBIASED_BELOW)
    return "".join(chars[:16])


def _is_canonical(encrypted: str) -> bool:
    """True unless the digit before the '=' padding carries non-zero spare bits."""
    if encrypted.endswith("=="):
        return encrypted[-3] in _CANONICAL_BEFORE_TWO_PADS
    if encrypted.endswith("="):
        return encrypted[-2] in _CANONICAL_BEFORE_ONE_PAD
    return True
