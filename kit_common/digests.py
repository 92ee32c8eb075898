"""Digests of files and of JSON-able values, one definition each."""
import hashlib
import json

CHUNK = 1 << 22


def file_digest(path, algorithm='sha256'):
    """Hex digest of a file's content, read in 4 MiB blocks (database files are hundreds of GB)."""
    digest = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(CHUNK), b''):
            digest.update(block)
    return digest.hexdigest()


def json_digest(value):
    """SHA-256 of a value's canonical JSON (sorted keys), so equal content gives equal ids."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def text_digest(text):
    return bytes_digest(text.encode('utf-8'))


def bytes_digest(data):
    return hashlib.sha256(data).hexdigest()
