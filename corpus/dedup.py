"""Exact and near-duplicate detection: whitespace-normalised hashes, then MinHash LSH (datasketch).

Signatures are computed where the files are processed (in the worker processes) and stored with them;
the LSH index runs once over all kept files in a fixed order, so the first of a group (by project and
path) is the one kept, in every run.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable

import numpy as np
from datasketch import MinHash, MinHashLSH

_PERMUTATIONS: dict[tuple[int, int], tuple] = {}
SCHEME = "affine32"  # datasketch 2's default: uint32 values, collision-free permutations
DTYPE = np.uint32


def exact_key(text: str) -> str:
    """Equal for files that differ only in whitespace."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


def shingles(text: str, n: int) -> np.ndarray:
    """32-bit hashes of the distinct word n-grams of `text` (vectorised: a 150 KB file has ~20k)."""
    tokens = text.split()  # whitespace words, as datatrove's MinHash shingles (a regex pass costs 10x)
    vocab = {t: zlib.crc32(t.encode()) for t in set(tokens)}
    ids = np.fromiter(map(vocab.__getitem__, tokens), np.uint64, len(tokens))
    if len(ids) < n:
        ids = np.concatenate([ids, np.zeros(n - len(ids), np.uint64)])
    # polynomial hash of each window, mod 2^32 (uint64 arithmetic wraps harmlessly before the mask)
    acc = np.zeros(len(ids) - n + 1, np.uint64)
    for k in range(n):
        acc = (acc * np.uint64(1_000_003) + ids[k : len(ids) - n + 1 + k]) & np.uint64(0xFFFFFFFF)
    return np.unique(acc)


def signature(text: str, *, num_perm: int = 256, shingle: int = 5, seed: int = 1) -> bytes:
    """The MinHash signature of `text`'s token n-grams, as bytes (num_perm uint32)."""
    key = (num_perm, seed)
    if key not in _PERMUTATIONS:  # generating 256 permutations costs more than hashing a file
        _PERMUTATIONS[key] = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
    m = MinHash(num_perm=num_perm, seed=seed, permutations=_PERMUTATIONS[key], scheme=SCHEME, hashfunc=int)
    m.update_batch(shingles(text, shingle).tolist())
    return m.hashvalues.astype(DTYPE).tobytes()


def near_duplicates(
    items: Iterable[tuple[str, bytes]], *, num_perm: int = 256, threshold: float = 0.7, seed: int = 1
) -> dict[str, str]:
    """{duplicate key: key of the earlier item it duplicates}, for items given in keep-first order."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept: dict[str, MinHash] = {}
    dupes: dict[str, str] = {}
    for key, sig in items:
        values = np.frombuffer(sig, dtype=DTYPE)
        m = MinHash(num_perm=num_perm, seed=seed, hashvalues=values, scheme=SCHEME)
        # LSH gives candidates; the signatures' estimated Jaccard confirms them (no banding false positives)
        found = sorted(k for k in lsh.query(m) if m.jaccard(kept[k]) >= threshold)
        if found:
            dupes[key] = found[0]
            continue
        lsh.insert(key, m)
        kept[key] = m
    return dupes
