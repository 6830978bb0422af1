"""``shipway encrypt | decrypt | keygen``: Codeship's encrypted files, as ``jet`` handles them.

``encrypt IN OUT`` and ``decrypt IN OUT`` take jet's arguments and its ``--key-path`` (default
``codeship.aes`` in the current directory) and read and write jet's format
(:mod:`shipway.codeship.jetcrypt`), so files go both ways between the two tools. ``keygen``
writes a new key the way Codeship hands one out. Nothing here talks to a cluster, and no
message quotes a decrypted byte. Exit codes: 0 done, 2 nothing written (with one line why).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from shipway.cli.common import OK, UNUSABLE, CommandError, err
from shipway.codeship import AES_KEY_FILE, FileError, read_aes_key
from shipway.codeship.jetcrypt import JetCryptError, decrypt, decrypt_text, encrypt, new_key

STDIO = "-"


def register(sub: Any) -> None:
    """Add ``encrypt``, ``decrypt`` and ``keygen`` to the ``shipway`` parser's subparsers."""
    key = argparse.ArgumentParser(add_help=False)
    key.add_argument(
        "--key-path",
        "--aes-key",
        dest="key_path",
        metavar="FILE",
        help=f"the project's AES key (default: {AES_KEY_FILE} in the current directory)",
    )
    enc = sub.add_parser(
        "encrypt", parents=[key], help="encrypt a file with the project's AES key, as jet does"
    )
    enc.add_argument("input", metavar="IN", help="plaintext file ('-' for standard input)")
    enc.add_argument(
        "output", metavar="OUT", nargs="?", default=STDIO, help="encrypted file (default: '-')"
    )
    enc.set_defaults(func=cmd_encrypt)

    dec = sub.add_parser(
        "decrypt", parents=[key], help="decrypt a jet-encrypted file with the project's AES key"
    )
    dec.add_argument("input", metavar="IN", help="encrypted file ('-' for standard input)")
    dec.add_argument(
        "output",
        metavar="OUT",
        nargs="?",
        default=STDIO,
        help="plaintext file, written mode 0600 (default: '-', standard output)",
    )
    dec.add_argument(
        "--binary",
        action="store_true",
        help="write the bytes even when they are not text (the key cannot be checked then)",
    )
    dec.set_defaults(func=cmd_decrypt)

    gen = sub.add_parser("keygen", help="write a new AES key file (mode 0600)")
    gen.add_argument(
        "path", nargs="?", default=AES_KEY_FILE, help=f"where (default: {AES_KEY_FILE})"
    )
    gen.add_argument("--force", action="store_true", help="replace an existing file")
    gen.set_defaults(func=cmd_keygen)


def _key(args: argparse.Namespace) -> bytes:
    path = Path(args.key_path or AES_KEY_FILE)
    if not path.is_file():
        raise CommandError(f"{path}: no such key file: give --key-path FILE or run shipway keygen")
    try:
        key = read_aes_key(".", path)
    except FileError as exc:
        raise CommandError(str(exc)) from None
    assert key is not None  # a file given is read or refused
    return key


def _read(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == STDIO else Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror or exc}") from None


def write_file(path: str, data: bytes, *, private: bool, replace: bool = True) -> None:
    """Write ``data`` to ``path`` (standard output for '-'). ``private``: mode 0600, also when
    the file was there before; without ``replace`` an existing file (or symlink) is refused."""
    if path == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600 if private else 0o666)
    except FileExistsError:
        raise CommandError(f"{path} exists: give --force to replace it") from None
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror or exc}") from None
    try:
        if private:
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror or exc}") from None


def _reported(fn: Any) -> Any:
    def wrapper(args: argparse.Namespace, out: TextIO) -> int:
        try:
            code: int = fn(args, out)
        except (CommandError, JetCryptError) as exc:
            where = "" if isinstance(exc, CommandError) else f"{getattr(args, 'input', '')}: "
            err(f"{where}{exc}")
            return UNUSABLE
        return code

    wrapper.__doc__ = fn.__doc__
    return wrapper


@_reported
def cmd_encrypt(args: argparse.Namespace, out: TextIO) -> int:
    """jet's layout: base64 of a fresh IV and the AES-256-CFB ciphertext, no newline."""
    key = _key(args)
    sealed = encrypt(_read(args.input), key)
    write_file(args.output, sealed.encode(), private=False)
    return OK


@_reported
def cmd_decrypt(args: argparse.Namespace, out: TextIO) -> int:
    """The plaintext; refused (nothing written) when it is not text, i.e. the key is wrong."""
    key = _key(args)
    content = _read(args.input)
    plain = decrypt(content, key) if args.binary else decrypt_text(content, key).encode()
    write_file(args.output, plain, private=True)
    return OK


@_reported
def cmd_keygen(args: argparse.Namespace, out: TextIO) -> int:
    write_file(args.path, new_key().encode(), private=True, replace=args.force)
    err(
        f"wrote a new AES key to {args.path} (mode 0600); keep it out of version control "
        "(.gitignore) and give it to the cluster's users only through a secure channel"
    )
    return OK
