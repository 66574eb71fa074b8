#!/usr/bin/env python3
"""Deflate implementations and levels on aam-etl's own output, the way aam-etl compresses it.

Issue 18 asked whether another deflate (libdeflate, another zlib-rs level, ISA-L) would
compress whole 1 MB blocks faster at about gzip -6's size. This compresses the first
128 MB of an uncompressed output in independent 1 MB blocks, on one core, and prints each
one's size and CPU seconds. zlib-ng is the C library zlib-rs (aam-etl's deflate) was ported
from, with the same level tables. Then, sizes only, libdeflate 6 over the whole file in
blocks of 1 to 16 MB against zlib 6 over it in one stream: how much of libdeflate's gap to
gzip -6 comes from compressing blocks apart.

    python3 -m venv /tmp/dv && /tmp/dv/bin/pip install deflate zlib-ng isal
    target/release/aam-etl --mapping mappings/bench.toml bench-data/10000000/crm.parquet \
        --out /tmp/plain --timestamp 1700000000 --force    # with [output] gzip = false
    /tmp/dv/bin/python scripts/deflate_levels.py /tmp/plain/ftp_dpm_21_1700000000.sync
"""
import sys
import time
import zlib

import deflate  # libdeflate
from isal import isal_zlib
from zlib_ng import zlib_ng

BLOCK = 1 << 20
data = open(sys.argv[1], "rb").read()[: 128 << 20]
blocks = [data[i : i + BLOCK] for i in range(0, len(data), BLOCK)]


CODECS = [("zlib 6", lambda b: zlib.compress(b, 6))]
CODECS += [(f"libdeflate {l}", lambda b, l=l: deflate.deflate_compress(b, l)) for l in (4, 5, 6, 7, 8)]
CODECS += [(f"zlib-ng {l}", lambda b, l=l: zlib_ng.compress(b, l)) for l in (5, 6, 7)]
CODECS += [(f"isal {l}", lambda b, l=l: isal_zlib.compress(b, l)) for l in (2, 3)]

# This machine's speed drifts: every codec runs once per round, and each keeps its fastest.
sizes, seconds = {}, {}
for _ in range(3):
    for name, compress in CODECS:
        start = time.process_time()
        sizes[name] = sum(len(compress(b)) for b in blocks)
        took = time.process_time() - start
        seconds[name] = min(seconds.get(name, took), took)
base = sizes["zlib 6"]
for name, _ in CODECS:
    print(f"{name:14s} {sizes[name]:>11,d} bytes ({sizes[name] / base - 1:+6.1%}) {seconds[name]:5.2f} s")

# Is libdeflate 6's gap to zlib 6 in its independent blocks or in its match search? The
# whole file in larger and larger blocks, against zlib 6 over it as one stream (gzip -6).
whole = open(sys.argv[1], "rb").read()
one = len(zlib.compress(whole, 6))
print(f"zlib 6, the whole file as one stream: {one:,d} bytes")
for mb in (1, 2, 4, 8, 16):
    size = mb << 20
    n = sum(len(deflate.deflate_compress(whole[i : i + size], 6)) for i in range(0, len(whole), size))
    print(f"libdeflate 6 in {mb:2d} MB blocks  {n:>11,d} bytes ({n / one - 1:+6.2%})")
