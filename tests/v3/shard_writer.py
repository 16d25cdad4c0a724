"""A small, independent Zarr v3 writer (and strict reader) for tests.

It follows the Zarr v3 core specification and the sharding_indexed codec
specification directly, using only numpy and numcodecs, so that labelbin's
Zarr v3 code can be checked against something it shares no code with:

- arrays of bool, int8..uint64, float32, float64; regular chunk grid;
  "default" and "v2" chunk key encodings with either separator; fill values
  in every spec form (numbers, "NaN", "Infinity", "-Infinity", "0x..." bit
  patterns, booleans, uint64 beyond 2^53);
- codecs transpose, bytes (little/big), gzip, zstd, blosc (every cname and
  shuffle, typesize honoured), crc32c (implemented here: CRC-32C,
  reflected polynomial 0x82F63B78) and sharding_indexed: index at the end or
  the start, absent inner chunks (offset = nbytes = 2^64-1), inner chunks in
  a shuffled order with unused bytes between them, nested sharding, edge
  shards, a transpose before sharding;
- --hostile: malformed arrays a reader must refuse (and a few odd but valid
  ones it must read), each with a one-line note.

The reader (read_array) is strict: it refuses index entries outside the
shard, overlapping ranges, wrong checksums and wrong decoded sizes, which
lets the test suite check that every hostile case is malformed as claimed.

Command line (run by /usr/bin/python3):
  shard_writer.py --self-test
  shard_writer.py write SPEC.json       same SPEC as zarrita_write.mjs, plus
                                        "layout": {"order": "c"|"shuffled"|
                                        "reversed", "gap": max unused bytes,
                                        "seed": n} and "fill_value" exact
  shard_writer.py read ARRAY OUT.bin    strict decode; JSON header on stdout
  shard_writer.py --cases OUT_DIR       the valid sharded cases
  shard_writer.py --hostile OUT_DIR     the malformed cases
Each of --cases/--hostile writes OUT_DIR/manifest.json: a list of
{"name", "path", "note", "expect": "read"|"refuse", and for "read" cases
"data" (expected contents, C order little endian), "dtype", "shape"}.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import zlib

import numcodecs
import numpy as np

U64_MAX = (1 << 64) - 1
# Stand-in chunk bytes for metadata-only hostile cases.
_NOISE = bytes(np.random.default_rng(3).integers(0, 256, 300, dtype=np.uint8))

DTYPES = {
    "bool": np.dtype("bool"),
    "int8": np.dtype("int8"), "uint8": np.dtype("uint8"),
    "int16": np.dtype("int16"), "uint16": np.dtype("uint16"),
    "int32": np.dtype("int32"), "uint32": np.dtype("uint32"),
    "int64": np.dtype("int64"), "uint64": np.dtype("uint64"),
    "float32": np.dtype("float32"), "float64": np.dtype("float64"),
}
ARRAY_TO_ARRAY = {"transpose"}
ARRAY_TO_BYTES = {"bytes", "sharding_indexed"}
BYTES_TO_BYTES = {"gzip", "zstd", "blosc", "crc32c"}
BLOSC_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


class Malformed(ValueError):
    """The array breaks the specification (or a limit of this reader)."""


# ------------------------------------------------------------------ crc32c --

def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli) of bytes, as RFC 3720 and the crc32c codec use."""
    c = 0xFFFFFFFF
    table = _CRC32C
    for b in bytes(data):
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def self_test():
    assert crc32c(b"123456789") == 0xE3069283, hex(crc32c(b"123456789"))
    assert crc32c(b"") == 0
    # RFC 3720 B.4: 32 bytes of zeros.
    assert crc32c(bytes(32)) == 0x8A9136AA, hex(crc32c(bytes(32)))


# ----------------------------------------------------------- fill values --

def fill_array(dtype_name, value):
    """The fill value (a JSON value) -> a 0-d numpy array with its exact bits."""
    dt = DTYPES[dtype_name]
    if dtype_name == "bool":
        if not isinstance(value, bool):
            raise Malformed(f"fill_value {value!r} is not a boolean")
        return np.array(value, dt)
    if dt.kind in "iu":
        if isinstance(value, bool) or not isinstance(value, int):
            raise Malformed(f"fill_value {value!r} is not an integer")
        info = np.iinfo(dt)
        if not info.min <= value <= info.max:
            raise Malformed(f"fill_value {value} is out of range for {dtype_name}")
        return np.array(value, dt)
    bits = np.dtype(f"<u{dt.itemsize}")
    if isinstance(value, str):
        if value == "NaN":
            return np.array(0x7FC00000 if dt.itemsize == 4 else 0x7FF8000000000000,
                            bits).view(dt.newbyteorder("<")).astype(dt)
        if value in ("Infinity", "-Infinity"):
            return np.array(float(value.replace("Infinity", "inf")), dt)
        if value.startswith("0x") and len(value) == 2 + 2 * dt.itemsize:
            try:
                return np.array(int(value, 16), bits).view(dt)
            except ValueError:
                pass
        raise Malformed(f"fill_value {value!r} is not a float form of the spec")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Malformed(f"fill_value {value!r} is not a number")
    return np.array(value, dt)


def same_bits(a, fill):
    """True when every element of a has the fill value's exact bits."""
    if a.size == 0:
        return True
    u = np.dtype(f"u{a.dtype.itemsize}")
    return bool((np.ascontiguousarray(a).view(u) == fill.reshape(1).view(u)[0]).all())


# ---------------------------------------------------------------- layout --

class Layout:
    """How a shard is laid out: inner chunk order and unused bytes.

    order: "c" (C order of the inner grid), "reversed" or "shuffled";
    gap: up to this many random bytes before each inner chunk;
    write_empty: store inner chunks equal to the fill value instead of
    marking them absent.
    """

    def __init__(self, order="shuffled", gap=24, seed=0, write_empty=False):
        self.order, self.gap, self.write_empty = order, gap, write_empty
        self.rng = np.random.default_rng(seed)

    def permute(self, n):
        if self.order == "c":
            return list(range(n))
        if self.order == "reversed":
            return list(range(n))[::-1]
        return [int(i) for i in self.rng.permutation(n)]

    def gap_bytes(self):
        if self.gap <= 0:
            return b""
        return self.rng.integers(0, 256, int(self.rng.integers(0, self.gap + 1)),
                                 dtype=np.uint8).tobytes()


# ------------------------------------------------------------------ codecs --

def _cfg(codec):
    return codec.get("configuration") or {}


def _kind(name):
    if name in ARRAY_TO_ARRAY:
        return 0
    if name in ARRAY_TO_BYTES:
        return 1
    if name in BYTES_TO_BYTES:
        return 2
    raise Malformed(f"unknown codec {name!r}")


def _check_chain(codecs, where):
    if not isinstance(codecs, list) or not codecs:
        raise Malformed(f"{where}: codecs must be a non-empty list")
    kinds = []
    for c in codecs:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            raise Malformed(f"{where}: codec {c!r} has no name")
        kinds.append(_kind(c["name"]))
    if kinds.count(1) != 1 or kinds != sorted(kinds):
        raise Malformed(f"{where}: codecs need array->array*, one array->bytes, "
                        f"bytes->bytes* in that order")


def _transpose_order(codec, rank):
    order = _cfg(codec).get("order")
    if not isinstance(order, list) or sorted(order) != list(range(rank)):
        raise Malformed(f"transpose order {order!r} is not a permutation of 0..{rank - 1}")
    return order


def _bytes_dtype(codec, dt):
    endian = _cfg(codec).get("endian")
    if dt.itemsize == 1:
        return dt
    if endian not in ("little", "big"):
        raise Malformed(f"bytes codec needs endian little/big for {dt.name}, got {endian!r}")
    return dt.newbyteorder("<" if endian == "little" else ">")


def _b2b_encode(codec, data):
    name, cfg = codec["name"], _cfg(codec)
    if name == "gzip":
        return numcodecs.GZip(level=cfg.get("level", 5)).encode(data)
    if name == "zstd":
        return bytes(numcodecs.Zstd(level=cfg.get("level", 0)).encode(data))
    if name == "blosc":
        shuffle = BLOSC_SHUFFLE[cfg.get("shuffle", "noshuffle")]
        typesize = cfg.get("typesize", 1) if shuffle else 1
        buf = np.frombuffer(data, np.dtype(f"u{typesize}")) if len(data) % typesize == 0 \
            and typesize in (1, 2, 4, 8) else np.frombuffer(data, np.uint8)
        return bytes(numcodecs.Blosc(cname=cfg.get("cname", "lz4"), clevel=cfg.get("clevel", 5),
                                     shuffle=shuffle,
                                     blocksize=cfg.get("blocksize", 0)).encode(buf))
    if name == "crc32c":
        return bytes(data) + struct.pack("<I", crc32c(data))
    raise Malformed(f"unknown codec {name!r}")


def _b2b_decode(codec, data, limit):
    """Decode one bytes->bytes codec; `limit` bounds the output size."""
    name = codec["name"]
    try:
        if name == "gzip":
            d = zlib.decompressobj(wbits=31)
            out = d.decompress(bytes(data), limit + 1)
            if len(out) > limit:
                raise Malformed(f"gzip data decodes to more than {limit} bytes")
            return out
        if name == "zstd":
            out = numcodecs.Zstd().decode(data)
        elif name == "blosc":
            if len(data) >= 16:
                nbytes = struct.unpack_from("<I", data, 4)[0]
                if nbytes > limit:
                    raise Malformed(f"blosc header declares {nbytes} bytes, more than {limit}")
            out = numcodecs.Blosc().decode(data)
        elif name == "crc32c":
            if len(data) < 4:
                raise Malformed("crc32c: data shorter than its checksum")
            body, want = bytes(data[:-4]), struct.unpack("<I", bytes(data[-4:]))[0]
            if crc32c(body) != want:
                raise Malformed(f"crc32c mismatch: stored {want:#010x}, computed {crc32c(body):#010x}")
            return body
        else:
            raise Malformed(f"unknown codec {name!r}")
    except Malformed:
        raise
    except Exception as e:  # the codec library's own complaint
        raise Malformed(f"{name}: cannot decode: {e}") from e
    out = bytes(out)
    if len(out) > limit:
        raise Malformed(f"{name} data decodes to {len(out)} bytes, more than {limit}")
    return out


def _chain_shapes(codecs, shape, where):
    """Shapes seen by each codec (array->array ones change it) and the
    array->bytes codec's index."""
    _check_chain(codecs, where)
    shapes = [list(shape)]
    for i, c in enumerate(codecs):
        if c["name"] == "transpose":
            order = _transpose_order(c, len(shapes[-1]))
            shapes.append([shapes[-1][o] for o in order])
        else:
            return shapes, i
    raise AssertionError("unreachable")


def validate_codecs(codecs, shape, dt, depth=0, where="codecs"):
    """Check a whole codec chain, nested ones included, before any chunk is
    read: names, configurations, shapes."""
    if depth > MAX_NESTING:
        raise Malformed(f"sharding nested deeper than {MAX_NESTING} levels")
    shapes, ab = _chain_shapes(codecs, shape, where)
    c = codecs[ab]
    if c["name"] == "bytes":
        _bytes_dtype(c, dt)
    else:
        cs, grid, n, loc = _check_shard_config(_cfg(c), shapes[-1])
        validate_codecs(_cfg(c)["codecs"], cs, dt, depth + 1, where + " > sharding_indexed")
        for ic in _cfg(c)["index_codecs"][:1]:
            _bytes_dtype(ic, np.dtype("uint64"))
    for c in codecs[ab + 1:]:
        cfg = _cfg(c)
        if c["name"] == "blosc":
            if cfg.get("cname") not in ("lz4", "lz4hc", "blosclz", "zstd", "snappy", "zlib"):
                raise Malformed(f"blosc cname {cfg.get('cname')!r} is unknown")
            if cfg.get("shuffle") not in BLOSC_SHUFFLE:
                raise Malformed(f"blosc shuffle {cfg.get('shuffle')!r} is unknown")
        elif c["name"] in ("gzip", "zstd") and not isinstance(cfg.get("level", 0), int):
            raise Malformed(f"{c['name']} level {cfg.get('level')!r} is not an integer")


def encode_chunk(a, codecs, fill, layout):
    """Encode a full-shape chunk (numpy array) with a v3 codec chain."""
    shapes, ab = _chain_shapes(codecs, a.shape, "codecs")
    for c in codecs[:ab]:
        a = a.transpose(_transpose_order(c, a.ndim))
    c = codecs[ab]
    if c["name"] == "bytes":
        data = np.ascontiguousarray(a).astype(_bytes_dtype(c, a.dtype), copy=False).tobytes()
    else:
        data = encode_shard(a, _cfg(c), fill, layout)
    for c in codecs[ab + 1:]:
        data = _b2b_encode(c, data)
    return bytes(data)


def _max_encoded_growth(n):
    # Compressors may expand incompressible data slightly; bound the
    # intermediate sizes generously but finitely.
    return n + n // 2 + 1024


def decode_chunk(data, codecs, shape, dt, fill, depth=0):
    """Decode one chunk back to a numpy array of `shape` (strict)."""
    shapes, ab = _chain_shapes(codecs, shape, "codecs")
    nbytes = int(np.prod(shape, dtype=np.uint64)) * dt.itemsize
    for c in reversed(codecs[ab + 1:]):
        data = _b2b_decode(c, data, _max_encoded_growth(nbytes) if c["name"] != "crc32c" else len(data))
    c = codecs[ab]
    inner_shape = shapes[-1]
    if c["name"] == "bytes":
        if len(data) != nbytes:
            raise Malformed(f"chunk decodes to {len(data)} bytes, expected {nbytes}")
        a = np.frombuffer(data, _bytes_dtype(c, dt)).astype(dt).reshape(inner_shape)
    else:
        a = decode_shard(data, _cfg(c), inner_shape, dt, fill, depth + 1)
    for c in reversed(codecs[:ab]):
        a = a.transpose(np.argsort(_transpose_order(c, a.ndim)))
    return np.ascontiguousarray(a)


# ---------------------------------------------------------------- sharding --

MAX_NESTING = 4
MAX_INNER_CHUNKS = 1 << 20


def _index_size(cfg, n):
    size = 16 * n
    for c in cfg.get("index_codecs", []):
        if c["name"] == "crc32c":
            size += 4
        elif c["name"] != "bytes":
            raise Malformed(f"index codec {c['name']!r} is not fixed-size")
    return size


def _check_shard_config(cfg, shard_shape):
    if not isinstance(cfg, dict):
        raise Malformed("sharding_indexed has no configuration")
    cs = cfg.get("chunk_shape")
    if (not isinstance(cs, list) or len(cs) != len(shard_shape)
            or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in cs)):
        raise Malformed(f"sharding chunk_shape {cs!r} does not match shard rank {len(shard_shape)}")
    if any(s % c for s, c in zip(shard_shape, cs)):
        raise Malformed(f"sharding chunk_shape {cs} does not divide shard shape {list(shard_shape)}")
    loc = cfg.get("index_location", "end")
    if loc not in ("start", "end"):
        raise Malformed(f"index_location {loc!r} is not start/end")
    ic = cfg.get("index_codecs")
    _check_chain(ic, "index_codecs")
    if [c["name"] for c in ic if _kind(c["name"]) != 2 or c["name"] != "crc32c"] != ["bytes"]:
        raise Malformed("index_codecs must be bytes followed by crc32c checksums only")
    grid = [s // c for s, c in zip(shard_shape, cs)]
    n = 1
    for g in grid:
        n *= g
    if n > MAX_INNER_CHUNKS:
        raise Malformed(f"{n} inner chunks per shard is more than this reader allows")
    return cs, grid, n, loc


def _encode_index(index, cfg):
    """index: uint64 array (..., 2) -> bytes through index_codecs."""
    data = None
    for c in cfg["index_codecs"]:
        if c["name"] == "bytes":
            data = index.astype(_bytes_dtype(c, index.dtype)).tobytes()
        else:
            data = _b2b_encode(c, data)
    return data


def _decode_index(data, cfg, grid):
    codecs = cfg["index_codecs"]
    for c in reversed(codecs[1:]):
        data = _b2b_decode(c, data, len(data))
    return np.frombuffer(data, _bytes_dtype(codecs[0], np.dtype("uint64"))) \
        .astype(np.uint64).reshape(list(grid) + [2])


def encode_shard(a, cfg, fill, layout):
    cs, grid, n, loc = _check_shard_config(cfg, a.shape)
    blobs = {}
    for k, pos in enumerate(np.ndindex(*grid)):
        sl = tuple(slice(p * c, (p + 1) * c) for p, c in zip(pos, cs))
        block = a[sl]
        if not layout.write_empty and same_bits(block, fill):
            continue
        blobs[k] = encode_chunk(np.ascontiguousarray(block), cfg["codecs"], fill, layout)
    index = np.full((n, 2), U64_MAX, np.uint64)
    isize = _index_size(cfg, n)
    body = bytearray()
    base = isize if loc == "start" else 0
    for k in layout.permute(n):
        if k not in blobs:
            continue
        body += layout.gap_bytes()
        index[k] = (base + len(body), len(blobs[k]))
        body += blobs[k]
    idx = _encode_index(index.reshape(list(grid) + [2]), cfg)
    assert len(idx) == isize
    return bytes(idx + body) if loc == "start" else bytes(body + idx)


def decode_shard(data, cfg, shard_shape, dt, fill, depth=1):
    if depth > MAX_NESTING:
        raise Malformed(f"sharding nested deeper than {MAX_NESTING} levels")
    cs, grid, n, loc = _check_shard_config(cfg, shard_shape)
    isize = _index_size(cfg, n)
    if len(data) < isize:
        raise Malformed(f"shard of {len(data)} bytes is shorter than its {isize}-byte index")
    raw = data[:isize] if loc == "start" else data[len(data) - isize:]
    index = _decode_index(raw, cfg, grid).reshape(n, 2)
    lo, hi = (isize, len(data)) if loc == "start" else (0, len(data) - isize)
    ranges = []
    for k in range(n):
        off, nb = int(index[k, 0]), int(index[k, 1])
        if off == U64_MAX and nb == U64_MAX:
            continue
        if off == U64_MAX or nb == U64_MAX:
            raise Malformed(f"inner chunk {k}: only one of offset/nbytes is 2^64-1")
        if off + nb > U64_MAX:
            raise Malformed(f"inner chunk {k}: offset {off} + nbytes {nb} overflows 2^64")
        if off < lo or off + nb > hi:
            raise Malformed(f"inner chunk {k}: bytes {off}..{off + nb} lie outside the "
                            f"shard's chunk area {lo}..{hi}")
        ranges.append((off, off + nb, k))
    ranges.sort()
    for (a0, a1, ka), (b0, b1, kb) in zip(ranges, ranges[1:]):
        if b0 < a1:
            raise Malformed(f"inner chunks {ka} and {kb} overlap ({a0}..{a1} and {b0}..{b1})")
    out = np.empty(shard_shape, dt)
    out[...] = fill
    for off, end, k in ranges:
        pos = np.unravel_index(k, grid)
        sl = tuple(slice(p * c, (p + 1) * c) for p, c in zip(pos, cs))
        out[sl] = decode_chunk(data[off:end], cfg["codecs"], cs, dt, fill, depth)
    return out


# ------------------------------------------------------------------ arrays --

def chunk_key(coords, cke):
    name = cke.get("name")
    sep = _cfg(cke).get("separator", "/" if name == "default" else ".")
    if sep not in ("/", "."):
        raise Malformed(f"chunk key separator {sep!r} is not / or .")
    if name == "default":
        return sep.join(["c"] + [str(c) for c in coords])
    if name == "v2":
        return sep.join(str(c) for c in coords) or "0"
    raise Malformed(f"unknown chunk key encoding {name!r}")


def _shard_shape_of(meta):
    return meta["chunk_grid"]["configuration"]["chunk_shape"]


def write_array(path, data, chunk_shape, codecs=None, fill_value=0,
                chunk_key_encoding=None, dimension_names=None, attributes=None,
                write_empty_chunks=False, layout=None, extra=None):
    """Write numpy `data` as a Zarr v3 array at `path` (a new directory).

    chunk_shape is the chunk grid's (for sharded arrays: the shard shape).
    Chunks equal to the fill value are left out unless write_empty_chunks.
    `extra` entries are merged into zarr.json last (for odd metadata).
    Returns the metadata written.
    """
    dtype_name = next(k for k, v in DTYPES.items() if v == data.dtype)
    codecs = codecs or [{"name": "bytes", "configuration": {"endian": "little"}}]
    cke = chunk_key_encoding or {"name": "default", "configuration": {"separator": "/"}}
    layout = layout or Layout()
    fill = fill_array(dtype_name, fill_value)
    meta = {
        "zarr_format": 3, "node_type": "array", "shape": list(data.shape),
        "data_type": dtype_name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunk_shape)}},
        "chunk_key_encoding": cke, "fill_value": fill_value, "codecs": codecs,
    }
    if dimension_names is not None:
        meta["dimension_names"] = dimension_names
    meta["attributes"] = attributes or {}
    meta.update(extra or {})
    os.makedirs(path, exist_ok=False)
    with open(os.path.join(path, "zarr.json"), "w") as f:
        json.dump(meta, f, indent=2)
    grid = [-(-s // c) for s, c in zip(data.shape, chunk_shape)]
    for pos in np.ndindex(*grid):
        block = np.empty(chunk_shape, data.dtype)
        block[...] = fill
        sl = tuple(slice(p * c, min((p + 1) * c, s)) for p, c, s in zip(pos, chunk_shape, data.shape))
        block[tuple(slice(0, s.stop - s.start) for s in sl)] = data[sl]
        if not write_empty_chunks and same_bits(block, fill):
            continue
        key = os.path.join(path, *chunk_key(pos, cke).split("/"))
        os.makedirs(os.path.dirname(key), exist_ok=True)
        with open(key, "wb") as f:
            f.write(encode_chunk(block, codecs, fill, layout))
    return meta


def _require(meta, key, kind):
    if key not in meta:
        raise Malformed(f"zarr.json lacks {key!r}")
    if not isinstance(meta[key], kind) or isinstance(meta[key], bool) and kind is not bool:
        raise Malformed(f"zarr.json {key!r} has the wrong type")
    return meta[key]


def parse_metadata(path):
    """zarr.json -> checked metadata dict (raises Malformed)."""
    try:
        with open(os.path.join(path, "zarr.json"), "rb") as f:
            meta = json.loads(f.read())
    except (OSError, ValueError) as e:
        raise Malformed(f"zarr.json: {e}") from e
    if not isinstance(meta, dict):
        raise Malformed("zarr.json is not an object")
    if meta.get("zarr_format") != 3:
        raise Malformed(f"zarr_format is {meta.get('zarr_format')!r}, not 3")
    if meta.get("node_type") != "array":
        raise Malformed(f"node_type is {meta.get('node_type')!r}, not array")
    shape = _require(meta, "shape", list)
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise Malformed(f"shape {shape!r} is not a list of non-negative integers")
    dt = _require(meta, "data_type", str)
    if dt not in DTYPES:
        raise Malformed(f"data_type {dt!r} is not supported")
    nbytes = DTYPES[dt].itemsize
    for s in shape:
        nbytes *= s
    if nbytes >= 1 << 63:
        raise Malformed(f"shape {shape} of {dt} needs {nbytes} bytes, more than 2^63")
    grid = _require(meta, "chunk_grid", dict)
    if grid.get("name") != "regular":
        raise Malformed(f"chunk grid {grid.get('name')!r} is not supported")
    cs = _cfg(grid).get("chunk_shape")
    if (not isinstance(cs, list) or len(cs) != len(shape)
            or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in cs)):
        raise Malformed(f"chunk_shape {cs!r} does not match shape {shape}")
    cke = _require(meta, "chunk_key_encoding", dict)
    chunk_key([0] * len(shape), cke)
    if "fill_value" not in meta:
        raise Malformed("zarr.json lacks 'fill_value'")
    fill_array(dt, meta["fill_value"])
    codecs = _require(meta, "codecs", list)
    validate_codecs(codecs, cs, DTYPES[dt])
    if meta.get("storage_transformers"):
        raise Malformed("storage transformers are not supported")
    dn = meta.get("dimension_names")
    if dn is not None and (not isinstance(dn, list) or len(dn) != len(shape)
                           or not all(d is None or isinstance(d, str) for d in dn)):
        raise Malformed(f"dimension_names {dn!r} does not match shape")
    return meta


def read_array(path):
    """Strictly decode a whole Zarr v3 array written by anyone."""
    meta = parse_metadata(path)
    dt = DTYPES[meta["data_type"]]
    shape, cs = meta["shape"], _shard_shape_of(meta)
    fill = fill_array(meta["data_type"], meta["fill_value"])
    out = np.empty(shape, dt)
    out[...] = fill
    grid = [-(-s // c) for s, c in zip(shape, cs)]
    for pos in np.ndindex(*grid):
        key = os.path.join(path, *chunk_key(pos, meta["chunk_key_encoding"]).split("/"))
        if not os.path.isfile(key):
            continue
        with open(key, "rb") as f:
            block = decode_chunk(f.read(), meta["codecs"], cs, dt, fill)
        sl = tuple(slice(p * c, min((p + 1) * c, s)) for p, c, s in zip(pos, cs, shape))
        out[sl] = block[tuple(slice(0, s.stop - s.start) for s in sl)]
    return out


def dump_raw(a, path):
    """C order, little endian, bool as bytes 0/1."""
    a = np.ascontiguousarray(a)
    with open(path, "wb") as f:
        f.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())


def load_raw(path, dtype_name, shape):
    dt = DTYPES[dtype_name]
    return np.fromfile(path, dt.newbyteorder("<") if dt.itemsize > 1 else dt).astype(dt).reshape(shape)


# ------------------------------------------------------------- test cases --

def _bytes(endian="little"):
    return {"name": "bytes", "configuration": {"endian": endian}}


CRC = {"name": "crc32c"}


def sharding(chunk_shape, codecs=None, index_codecs=None, location="end"):
    return {"name": "sharding_indexed", "configuration": {
        "chunk_shape": list(chunk_shape),
        "codecs": codecs or [_bytes()],
        "index_codecs": index_codecs or [_bytes(), CRC],
        "index_location": location}}


def _labels(rng, shape, dtype, fill=0, empty_fraction=0.3, block=4):
    """Label-like data: random values with blocks left at the fill value so
    that some inner chunks and shards are absent."""
    dt = DTYPES[dtype]
    if dtype == "bool":
        a = rng.integers(0, 2, shape).astype(bool)
    elif dt.kind == "f":
        a = rng.standard_normal(shape).astype(dt)
    else:
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
    fillv = fill_array(dtype, fill)
    blocks = [-(-s // block) for s in shape]
    for pos in np.ndindex(*blocks):
        if rng.random() < empty_fraction:
            a[tuple(slice(p * block, (p + 1) * block) for p in pos)] = fillv
    return a


def valid_case_specs():
    """The sharded cases --cases writes: name -> keyword arguments.

    "zarrita" says how zarrita 0.7.5 can check the case: "direct" (its
    reader reads it), "relocate" (index at the start: moved to the end
    first), "rewrap" (nested sharding or a transpose before sharding: each
    shard, or each inner shard, re-wrapped as an array of its own),
    "rewrap+relocate" (both), "nonfill" (zarrita misparses this form of
    fill value: compare where the data is not the fill value)."""
    s3 = (20, 26, 31)   # not a multiple of any shard shape: edge shards
    cases = {
        "end_bytes_crc": dict(shape=s3, dtype="uint16", shard=(8, 8, 16), codecs=[sharding((4, 4, 8))],
                              note="index at the end (bytes little + crc32c), inner bytes little",
                              zarrita="direct"),
        "start_bytes_crc": dict(shape=s3, dtype="uint16", shard=(8, 8, 16),
                                codecs=[sharding((4, 4, 8), location="start")],
                                note="index at the start", zarrita="relocate"),
        "end_gzip": dict(shape=s3, dtype="uint32", shard=(8, 12, 16),
                         codecs=[sharding((4, 6, 8), [_bytes(), {"name": "gzip", "configuration": {"level": 5}}])],
                         note="inner gzip", zarrita="direct"),
        "end_zstd": dict(shape=s3, dtype="uint64", shard=(10, 13, 16),
                         codecs=[sharding((5, 13, 4), [_bytes(), {"name": "zstd", "configuration": {"level": 3, "checksum": False}}])],
                         note="inner zstd, uint64", zarrita="direct"),
        "start_blosc_lz4_shuffle": dict(shape=s3, dtype="int32", shard=(8, 8, 8),
                                        codecs=[sharding((4, 4, 4), [_bytes(), {"name": "blosc", "configuration": {
                                            "cname": "lz4", "clevel": 5, "shuffle": "shuffle", "typesize": 4, "blocksize": 0}}],
                                            location="start")],
                                        note="inner blosc lz4 byte shuffle, index at the start", zarrita="relocate"),
        "end_blosc_zstd_bitshuffle": dict(shape=s3, dtype="int64", shard=(8, 8, 8),
                                          codecs=[sharding((4, 4, 4), [_bytes(), {"name": "blosc", "configuration": {
                                              "cname": "zstd", "clevel": 3, "shuffle": "bitshuffle", "typesize": 8, "blocksize": 0}}])],
                                          note="inner blosc zstd bit shuffle", zarrita="direct"),
        "end_blosc_blosclz_noshuffle_crc": dict(shape=s3, dtype="int16", shard=(8, 8, 8),
                                                codecs=[sharding((4, 4, 4), [_bytes("big"), {"name": "blosc", "configuration": {
                                                    "cname": "blosclz", "clevel": 9, "shuffle": "noshuffle", "blocksize": 0}}, CRC])],
                                                note="inner bytes big + blosc blosclz no shuffle + crc32c", zarrita="direct"),
        "end_inner_transpose_f": dict(shape=s3, dtype="uint8", shard=(8, 8, 16),
                                      codecs=[sharding((4, 8, 8), [{"name": "transpose", "configuration": {"order": [2, 1, 0]}}, _bytes()])],
                                      note="inner chunks transposed (F order)", zarrita="direct"),
        "end_index_big_no_crc": dict(shape=s3, dtype="int8", shard=(4, 8, 8), fill=-1,
                                     codecs=[sharding((2, 4, 4), index_codecs=[_bytes("big")])],
                                     note="index bytes big endian without crc32c, fill -1", zarrita="direct"),
        "ordered_no_gaps": dict(shape=s3, dtype="uint16", shard=(8, 8, 16), codecs=[sharding((4, 4, 8))],
                                layout=dict(order="c", gap=0),
                                note="inner chunks in C order with no unused bytes", zarrita="direct"),
        "write_empty_inner": dict(shape=s3, dtype="uint16", shard=(8, 8, 16), codecs=[sharding((4, 4, 8))],
                                  layout=dict(order="reversed", gap=7, write_empty=True),
                                  note="inner chunks equal to the fill value stored, reversed order",
                                  zarrita="direct"),
        "nested": dict(shape=(24, 20, 33), dtype="uint32", shard=(16, 16, 16),
                       codecs=[sharding((8, 8, 8), [sharding((4, 4, 4), [_bytes(), {"name": "gzip", "configuration": {"level": 1}}])])],
                       note="sharding inside sharding (inner shards of 8^3 with 4^3 gzip chunks)", zarrita="rewrap"),
        "nested_start_in_end": dict(shape=(24, 20, 33), dtype="uint16", shard=(16, 16, 16),
                                    codecs=[sharding((8, 8, 8), [sharding((4, 4, 4), location="start")])],
                                    note="nested: inner shards with the index at the start", zarrita="rewrap+relocate"),
        "transpose_then_shard": dict(shape=(18, 22, 27), dtype="uint16", shard=(6, 8, 12),
                                     codecs=[{"name": "transpose", "configuration": {"order": [2, 0, 1]}},
                                             sharding((4, 3, 4))],
                                     note="transpose [2,0,1] before sharding (inner chunk shape in transposed axes)",
                                     zarrita="rewrap"),
        "float32_nan_fill": dict(shape=(9, 30), dtype="float32", shard=(4, 16), fill="NaN",
                                 codecs=[sharding((2, 8))], note="float32, fill NaN, 2-D", zarrita="direct"),
        "float64_hex_fill": dict(shape=(40,), dtype="float64", shard=(16,), fill="0x7ff8000000000001",
                                 codecs=[sharding((4,), [_bytes(), {"name": "zstd", "configuration": {"level": 1, "checksum": False}}])],
                                 note="float64, fill a NaN with payload as hex, 1-D", zarrita="nonfill"),
        "uint64_max_fill": dict(shape=(12, 12, 12), dtype="uint64", shard=(8, 8, 8), fill=U64_MAX,
                                codecs=[sharding((4, 4, 4))],
                                note="uint64, fill 2^64-1 as a JSON integer", zarrita="nonfill"),
        "bool": dict(shape=(13, 17, 9), dtype="bool", shard=(8, 8, 8), fill=False,
                     codecs=[sharding((4, 4, 4), [_bytes(), {"name": "gzip", "configuration": {"level": 9}}])],
                     note="bool", zarrita="direct"),
        "v2_key_slash": dict(shape=s3, dtype="uint16", shard=(8, 8, 16), codecs=[sharding((4, 4, 8))],
                             cke={"name": "v2", "configuration": {"separator": "/"}},
                             note="chunk key encoding v2 with /", zarrita="direct"),
        "default_key_dot": dict(shape=s3, dtype="uint16", shard=(8, 8, 16), codecs=[sharding((4, 4, 8))],
                                cke={"name": "default", "configuration": {"separator": "."}},
                                note="chunk key encoding default with .", zarrita="direct"),
        "all_absent_index_only": dict(shape=(8, 8, 8), dtype="uint16", shard=(8, 8, 8), codecs=[sharding((4, 4, 4))],
                                      empty=1.0, write_empty_chunks=True,
                                      note="a shard file whose index marks every inner chunk absent",
                                      zarrita="direct"),
        "spec_example": dict(shape=(100, 128), dtype="uint8", shard=(64, 64),
                             codecs=[sharding((32, 32), [_bytes(), {"name": "gzip", "configuration": {"level": 1}}])],
                             note="the sharding spec's example: shard [64,64], inner [32,32], gzip 1, "
                                  "index bytes+crc32c at the end (68 bytes)", zarrita="direct"),
    }
    for c in cases.values():
        c.setdefault("fill", 0 if c["dtype"] != "bool" else False)
    return cases


def write_case(out_dir, name, case, seed=0):
    """Write one case of valid_case_specs(); returns its manifest entry."""
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    data = _labels(rng, case["shape"], case["dtype"], case["fill"], case.get("empty", 0.3))
    lay = dict(seed=seed)
    lay.update(case.get("layout", {}))
    path = os.path.join(out_dir, name + ".zarr")
    write_array(path, data, case["shard"], case["codecs"], case["fill"],
                chunk_key_encoding=case.get("cke"), dimension_names=["z", "y", "x"][-data.ndim:],
                attributes={"case": name}, write_empty_chunks=case.get("write_empty_chunks", False),
                layout=Layout(**lay))
    dump_raw(data, os.path.join(out_dir, name + ".bin"))
    return {"name": name, "path": name + ".zarr", "note": case["note"], "expect": "read",
            "data": name + ".bin", "dtype": case["dtype"], "shape": list(case["shape"]),
            "zarrita": case["zarrita"]}


def write_cases(out_dir, seed=0):
    os.makedirs(out_dir, exist_ok=True)
    manifest = [write_case(out_dir, n, c, seed) for n, c in valid_case_specs().items()]
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


# ---------------------------------------------------------- hostile cases --

def _shard_file(path):
    """The one shard file of a small hostile array."""
    for d, _, files in os.walk(path):
        for f in files:
            if f != "zarr.json":
                return os.path.join(d, f)
    raise AssertionError(f"{path} has no chunk")


def _rewrite_index(shard_path, cfg, n, edit):
    """Apply edit(index (n,2) uint64 array) to a shard's index (end or start,
    bytes little + crc32c), recomputing the checksum."""
    with open(shard_path, "rb") as f:
        data = bytearray(f.read())
    isize = _index_size(cfg, n)
    start = 0 if cfg.get("index_location") == "start" else len(data) - isize
    index = np.frombuffer(bytes(data[start:start + 16 * n]), "<u8").reshape(n, 2).copy()
    edit(index)
    raw = index.astype("<u8").tobytes()
    data[start:start + isize] = raw + struct.pack("<I", crc32c(raw))
    with open(shard_path, "wb") as f:
        f.write(bytes(data))


def hostile_cases(out_dir):
    """Write the malformed cases; returns the manifest."""
    os.makedirs(out_dir, exist_ok=True)
    manifest = []
    rng = np.random.default_rng(7)
    data = rng.integers(1, 60000, (8, 8, 8), dtype=np.uint16)   # no absent chunk
    cfg = sharding((4, 4, 4))["configuration"]
    n = 8

    def base(name, codecs=None, fill=0, arr=data, shard=(8, 8, 8), **kw):
        path = os.path.join(out_dir, name + ".zarr")
        write_array(path, arr, shard, codecs or [sharding((4, 4, 4))], fill,
                    layout=Layout(order="c", gap=0), **kw)
        return path

    def add(name, note, expect="refuse", arr=None, dtype="uint16"):
        e = {"name": name, "path": name + ".zarr", "note": note, "expect": expect}
        if expect == "read":
            dump_raw(arr, os.path.join(out_dir, name + ".bin"))
            e.update(data=name + ".bin", dtype=dtype, shape=list(arr.shape))
        manifest.append(e)

    def index_case(name, note, edit, location="end"):
        codecs = [sharding((4, 4, 4), location=location)]
        p = base(name, codecs)
        _rewrite_index(_shard_file(p), codecs[0]["configuration"], n, edit)
        add(name, note)

    def set_(k, off, nb):
        def edit(ix):
            ix[k] = (off, nb)
        return edit

    # Shard index entries.
    index_case("index_offset_outside", "inner chunk 3's offset is past the end of the shard",
               set_(3, 1 << 20, 128))
    index_case("index_nbytes_past_end", "inner chunk 5 starts inside the shard but runs past its end",
               lambda ix: ix.__setitem__((5, 1), 1 << 16))
    index_case("index_into_index", "inner chunk 7's range covers the index itself (index at the end)",
               lambda ix: ix.__setitem__((7, 1), int(ix[7, 1]) + 16))
    index_case("index_start_chunk_in_index", "index at the start; inner chunk 0 points at offset 0, inside the index",
               set_(0, 0, 128), location="start")
    index_case("index_overflow", "offset + nbytes overflows 2^64 (offset 2^64-16, nbytes 32)",
               set_(2, U64_MAX - 15, 32))
    index_case("index_half_empty", "offset is 2^64-1 but nbytes is not (absent is both)",
               lambda ix: ix.__setitem__((4, 0), U64_MAX))
    index_case("overlap_identical", "inner chunks 1 and 2 point at the same bytes (each decodes; overlap refused)",
               lambda ix: ix.__setitem__(2, ix[1]))
    index_case("overlap_partial", "inner chunk 6's range starts in the middle of inner chunk 5's",
               lambda ix: ix.__setitem__((6, 0), int(ix[5, 0]) + 8))
    index_case("chunk_size_short", "inner chunk 0's nbytes is one byte short: decodes to the wrong size",
               lambda ix: ix.__setitem__((0, 1), int(ix[0, 1]) - 1))

    p = base("index_bad_crc")
    with open(_shard_file(p), "r+b") as f:
        f.seek(-1, os.SEEK_END)
        b = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([b[0] ^ 0xFF]))
    add("index_bad_crc", "the shard index's crc32c does not match")

    p = base("index_bit_flip")
    with open(_shard_file(p), "r+b") as f:
        f.seek(-(16 * n + 4) + 3, os.SEEK_END)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x01]))
    add("index_bit_flip", "one bit of an index offset flipped; the crc32c catches it")

    p = base("truncated_shard")
    sp = _shard_file(p)
    with open(sp, "r+b") as f:
        f.truncate(16 * n + 4 - 1)
    add("truncated_shard", "the shard file is one byte shorter than its index")

    p = base("empty_shard")
    with open(_shard_file(p), "wb"):
        pass
    add("empty_shard", "the shard file is empty (0 bytes)")

    p = base("inner_crc_bad", [sharding((4, 4, 4), [_bytes(), CRC])])
    sp = _shard_file(p)
    with open(sp, "r+b") as f:
        f.seek(10)
        b = f.read(1)
        f.seek(10)
        f.write(bytes([b[0] ^ 0x40]))
    add("inner_crc_bad", "an inner chunk's own crc32c does not match its bytes")

    # Decoded sizes.
    small = np.arange(32, dtype=np.uint16).tobytes()
    p = base("gzip_wrong_size", [sharding((4, 4, 4), [_bytes(), {"name": "gzip", "configuration": {"level": 1}}])])
    _replace_inner(_shard_file(p), cfg, n, 0, gzip.compress(small))
    add("gzip_wrong_size", "inner gzip chunk 0 decompresses to 64 bytes instead of 128")
    p = base("gzip_bomb", [sharding((4, 4, 4), [_bytes(), {"name": "gzip", "configuration": {"level": 1}}])])
    _replace_inner(_shard_file(p), cfg, n, 0, gzip.compress(bytes(64 << 20), 9))
    add("gzip_bomb", "inner gzip chunk 0 decompresses to 64 MiB instead of 128 bytes")
    p = base("zstd_wrong_size", [sharding((4, 4, 4), [_bytes(), {"name": "zstd", "configuration": {"level": 1}}])])
    _replace_inner(_shard_file(p), cfg, n, 0, bytes(numcodecs.Zstd(1).encode(small * 3)))
    add("zstd_wrong_size", "inner zstd chunk 0 decompresses to 192 bytes instead of 128")
    p = base("blosc_header_lies", [sharding((4, 4, 4), [_bytes(), {"name": "blosc", "configuration": {
        "cname": "lz4", "clevel": 5, "shuffle": "shuffle", "typesize": 2, "blocksize": 0}}])])
    blob = bytearray(numcodecs.Blosc("lz4", 5, 1).encode(np.frombuffer(small * 4, np.uint16)))
    blob[4:8] = struct.pack("<I", 1 << 31)   # declared uncompressed size 2 GiB
    _replace_inner(_shard_file(p), cfg, n, 0, bytes(blob))
    add("blosc_header_lies", "inner blosc chunk 0's header declares 2 GiB uncompressed")
    p = base("chunk_not_gzip", [sharding((4, 4, 4), [_bytes(), {"name": "gzip", "configuration": {"level": 1}}])])
    _replace_inner(_shard_file(p), cfg, n, 0, b"this is not gzip data at all" * 4)
    add("chunk_not_gzip", "inner chunk 0 is not gzip data although the codec says gzip")

    # Shard bombs: deep nesting and absurd shapes, all within tiny files.
    deep = [_bytes()]
    for _ in range(64):
        deep = [sharding((1, 1, 1), deep)]
    p = os.path.join(out_dir, "nest_deep.zarr")
    _write_meta(p, [1, 1, 1], "uint8", [1, 1, 1], deep)
    _put_chunk(p, _deep_shard(64))
    add("nest_deep", "64 levels of sharding_indexed nested in each other (1x1x1 each)")

    p = os.path.join(out_dir, "nest_huge_shape.zarr")
    big = 1 << 40
    _write_meta(p, [big, big, big], "uint64", [big, big, big],
                [sharding([1 << 20] * 3, [sharding([1, 1, 1])])])
    add("nest_huge_shape", "shards of 2^40^3 voxels whose inner grid needs 2^60 index entries, nested")

    p = os.path.join(out_dir, "index_huge.zarr")
    _write_meta(p, [1 << 16] * 3, "uint8", [1 << 16] * 3, [sharding([1, 1, 1])])
    _put_chunk(p, bytes(64))
    add("index_huge", "2^48 inner chunks per shard (a 4 PiB index) and a 64-byte shard file")

    p = os.path.join(out_dir, "inner_not_dividing.zarr")
    _write_meta(p, [8, 8, 8], "uint16", [8, 8, 8], [sharding((3, 4, 4))])
    _put_chunk(p, _NOISE)
    add("inner_not_dividing", "inner chunk_shape [3,4,4] does not divide the shard shape [8,8,8]")

    p = os.path.join(out_dir, "inner_rank_mismatch.zarr")
    _write_meta(p, [8, 8, 8], "uint16", [8, 8, 8], [sharding((4, 4))])
    _put_chunk(p, _NOISE)
    add("inner_rank_mismatch", "inner chunk_shape has 2 axes for a 3-D array")

    p = os.path.join(out_dir, "index_location_bad.zarr")
    c = sharding((4, 4, 4))
    c["configuration"]["index_location"] = "middle"
    _write_meta(p, [8, 8, 8], "uint16", [8, 8, 8], [c])
    _put_chunk(p, _NOISE)
    add("index_location_bad", 'index_location "middle"')

    p = os.path.join(out_dir, "index_codec_gzip.zarr")
    _write_meta(p, [8, 8, 8], "uint16", [8, 8, 8],
                [sharding((4, 4, 4), index_codecs=[_bytes(), {"name": "gzip", "configuration": {"level": 1}}])])
    _put_chunk(p, _NOISE)
    add("index_codec_gzip", "gzip among index_codecs (variable size: the spec forbids it)")

    p = os.path.join(out_dir, "sharding_no_config.zarr")
    _write_meta(p, [8, 8, 8], "uint16", [8, 8, 8], [{"name": "sharding_indexed"}])
    _put_chunk(p, _NOISE)
    add("sharding_no_config", "sharding_indexed without a configuration")

    # Unknown extension points.
    for name, note, kw in [
        ("unknown_codec", 'codec "lb_unknown_codec" (must be refused naming it)',
         dict(codecs=[_bytes(), {"name": "lb_unknown_codec", "configuration": {}}])),
        ("unknown_inner_codec", 'codec "lb_unknown_codec" inside sharding_indexed',
         dict(codecs=[sharding((4, 4, 4), [_bytes(), {"name": "lb_unknown_codec"}])])),
        ("unknown_array_to_bytes", 'array->bytes codec "vlen-utf8" on uint16 data',
         dict(codecs=[{"name": "vlen-utf8"}])),
        ("unknown_chunk_grid", 'chunk grid "rectilinear"',
         dict(grid={"name": "rectilinear", "configuration": {"chunk_shapes": [[4, 4], [8], [8]]}})),
        ("unknown_key_encoding", 'chunk key encoding "lb_flat"',
         dict(cke={"name": "lb_flat"})),
        ("bad_key_separator", 'default chunk key encoding with separator "-"',
         dict(cke={"name": "default", "configuration": {"separator": "-"}})),
        ("storage_transformer", "a storage transformer is listed",
         dict(extra={"storage_transformers": [{"name": "lb_unknown_transformer"}]})),
        ("unknown_dtype", 'data_type "complex64"', dict(dtype="complex64")),
        ("dtype_float16", 'data_type "float16" (optional in the spec; refuse unless supported)',
         dict(dtype="float16")),
        ("two_array_to_bytes", "two array->bytes codecs", dict(codecs=[_bytes(), _bytes()])),
        ("no_array_to_bytes", "only a bytes->bytes codec", dict(codecs=[{"name": "gzip", "configuration": {"level": 1}}])),
        ("codecs_empty", "an empty codecs list", dict(codecs=[])),
        ("codec_order_wrong", "gzip before bytes", dict(codecs=[{"name": "gzip", "configuration": {"level": 1}}, _bytes()])),
        ("bytes_no_endian", "bytes codec without endian for uint16", dict(codecs=[{"name": "bytes"}])),
        ("bytes_endian_bad", 'bytes endian "middle"', dict(codecs=[{"name": "bytes", "configuration": {"endian": "middle"}}])),
        ("transpose_not_perm", "transpose order [0, 0, 1]",
         dict(codecs=[{"name": "transpose", "configuration": {"order": [0, 0, 1]}}, _bytes()])),
        ("transpose_rank", "transpose order with 2 axes for 3-D chunks",
         dict(codecs=[{"name": "transpose", "configuration": {"order": [1, 0]}}, _bytes()])),
    ]:
        p = os.path.join(out_dir, name + ".zarr")
        _write_meta(p, [8, 8, 8], kw.get("dtype", "uint16"), [4, 4, 4],
                    kw.get("codecs", [_bytes()]), grid=kw.get("grid"), cke=kw.get("cke"),
                    extra=kw.get("extra"))
        _put_chunk(p, _NOISE)
        add(name, note)

    # Malformed zarr.json.
    good = _meta([8, 8, 8], "uint16", [4, 4, 4], [_bytes()])
    for name, note, doc in [
        ("json_syntax", "zarr.json is not JSON", b'{"zarr_format": 3,'),
        ("json_not_object", "zarr.json is a JSON list", b"[3]"),
        ("json_empty", "zarr.json is empty", b""),
        ("json_nul", "zarr.json is binary zeros", bytes(64)),
        ("zarr_format_2", "zarr_format 2 in a zarr.json", dict(good, zarr_format=2)),
        ("zarr_format_string", 'zarr_format "3"', dict(good, zarr_format="3")),
        ("node_type_group", "node_type group where an array is read", {"zarr_format": 3, "node_type": "group", "attributes": {}}),
        ("node_type_missing", "no node_type", {k: v for k, v in good.items() if k != "node_type"}),
        ("missing_shape", "no shape", {k: v for k, v in good.items() if k != "shape"}),
        ("missing_data_type", "no data_type", {k: v for k, v in good.items() if k != "data_type"}),
        ("missing_chunk_grid", "no chunk_grid", {k: v for k, v in good.items() if k != "chunk_grid"}),
        ("missing_key_encoding", "no chunk_key_encoding", {k: v for k, v in good.items() if k != "chunk_key_encoding"}),
        ("missing_fill_value", "no fill_value", {k: v for k, v in good.items() if k != "fill_value"}),
        ("missing_codecs", "no codecs", {k: v for k, v in good.items() if k != "codecs"}),
        ("shape_string", 'shape "8,8,8"', dict(good, shape="8,8,8")),
        ("shape_negative", "shape [8, -1, 8]", dict(good, shape=[8, -1, 8])),
        ("shape_float", "shape [8, 8.5, 8]", dict(good, shape=[8, 8.5, 8])),
        ("shape_huge", "shape [2^63, 2^63, 2^63] (the element count overflows)", dict(good, shape=[1 << 63] * 3)),
        ("chunk_shape_zero", "chunk_shape [4, 0, 4]", dict(good, chunk_grid={"name": "regular", "configuration": {"chunk_shape": [4, 0, 4]}})),
        ("chunk_shape_rank", "chunk_shape with 2 axes for a 3-D shape", dict(good, chunk_grid={"name": "regular", "configuration": {"chunk_shape": [4, 4]}})),
        ("chunk_shape_missing", "regular grid without chunk_shape", dict(good, chunk_grid={"name": "regular"})),
        ("data_type_number", "data_type 2", dict(good, data_type=2)),
        ("fill_string_int", 'fill_value "0" for uint16', dict(good, fill_value="0")),
        ("fill_out_of_range", "fill_value 65536 for uint16", dict(good, fill_value=65536)),
        ("fill_fraction", "fill_value 1.5 for uint16", dict(good, fill_value=1.5)),
        ("fill_bool_for_int", "fill_value true for uint16", dict(good, fill_value=True)),
        ("fill_null", "fill_value null", dict(good, fill_value=None)),
        ("fill_hex_short", 'fill_value "0x7fc0" for float32', dict(good, data_type="float32", fill_value="0x7fc0")),
        ("fill_nan_word", 'fill_value "nan" (lower case) for float32', dict(good, data_type="float32", fill_value="nan")),
        ("fill_int_for_bool", "fill_value 0 for bool", dict(good, data_type="bool", fill_value=0)),
        ("codecs_object", "codecs is an object", dict(good, codecs={"name": "bytes"})),
        ("codec_no_name", "a codec without a name", dict(good, codecs=[{"configuration": {"endian": "little"}}])),
        ("dimension_names_length", "dimension_names with 2 names for 3 axes", dict(good, dimension_names=["y", "x"])),
        ("dimension_names_type", "dimension_names [1, 2, 3]", dict(good, dimension_names=[1, 2, 3])),
    ]:
        p = os.path.join(out_dir, name + ".zarr")
        os.makedirs(p)
        with open(os.path.join(p, "zarr.json"), "wb") as f:
            f.write(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
        add(name, note)

    # Odd but valid: must read correctly.
    z = np.zeros((8, 8, 8), np.uint16)
    p = base("ok_trailing_garbage_start", [sharding((4, 4, 4), location="start")])
    with open(_shard_file(p), "ab") as f:
        f.write(b"unused bytes after the last inner chunk")
    add("ok_trailing_garbage_start", "index at the start and unused bytes at the end of the shard",
        "read", data)
    p = base("ok_all_absent", arr=z, write_empty_chunks=True)
    add("ok_all_absent", "a shard whose every inner chunk is absent reads as the fill value", "read", z)
    p = base("ok_no_shard", arr=z)
    add("ok_no_shard", "no shard file at all: the fill value", "read", z)
    big = np.full((8, 8, 8), 7, np.uint16)
    big[:4] = data[:4]
    p = base("ok_inner_absent_fill7", fill=7, arr=big)
    add("ok_inner_absent_fill7", "absent inner chunks with fill value 7", "read", big)

    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def _put_chunk(path, blob, key="c/0/0/0"):
    """Store a chunk at a default-encoded key, so that a reader which only
    checks the codecs when it decodes a chunk meets them too."""
    full = os.path.join(path, *key.split("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(blob)


def _meta(shape, dtype, chunk_shape, codecs, grid=None, cke=None, fill=0, extra=None):
    m = {"zarr_format": 3, "node_type": "array", "shape": shape, "data_type": dtype,
         "chunk_grid": grid or {"name": "regular", "configuration": {"chunk_shape": chunk_shape}},
         "chunk_key_encoding": cke or {"name": "default", "configuration": {"separator": "/"}},
         "fill_value": fill, "codecs": codecs, "attributes": {}}
    m.update(extra or {})
    return m


def _write_meta(path, *args, **kw):
    os.makedirs(path)
    with open(os.path.join(path, "zarr.json"), "w") as f:
        json.dump(_meta(*args, **kw), f, indent=1)


def _deep_shard(levels):
    """A real shard nested `levels` deep around one uint8 element (value 1)."""
    blob = b"\x01"
    for _ in range(levels):
        index = struct.pack("<QQ", 0, len(blob))
        blob = blob + index + struct.pack("<I", crc32c(index))
    return blob


def _replace_inner(shard_path, cfg, n, k, blob):
    """Put `blob` as inner chunk k of an index-at-end shard, fixing its index."""
    with open(shard_path, "rb") as f:
        data = f.read()
    isize = _index_size(cfg, n)
    body, idx = data[:-isize], data[-isize:]
    index = np.frombuffer(idx[:16 * n], "<u8").reshape(n, 2).copy()
    index[k] = (len(body), len(blob))
    raw = index.astype("<u8").tobytes()
    with open(shard_path, "wb") as f:
        f.write(body + blob + raw + struct.pack("<I", crc32c(raw)))


# ---------------------------------------------------------------- command --

def _spec_write(spec):
    dt = DTYPES[spec["data_type"]]
    data = load_raw(spec["data"], spec["data_type"], spec["shape"])
    lay = spec.get("layout", {})
    write_array(spec["path"], data.astype(dt), spec["chunk_shape"], spec.get("codecs"),
                spec.get("fill_value", False if dt.kind == "b" else 0),
                spec.get("chunk_key_encoding"), spec.get("dimension_names"),
                spec.get("attributes"), spec.get("write_empty_chunks", False),
                Layout(order=lay.get("order", "shuffled"), gap=lay.get("gap", 24),
                       seed=lay.get("seed", 0), write_empty=lay.get("write_empty", False)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--cases", metavar="OUT_DIR")
    ap.add_argument("--hostile", metavar="OUT_DIR")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("command", nargs="*", help="write SPEC.json | read ARRAY OUT.bin")
    a = ap.parse_args(argv)
    self_test()
    if a.cases:
        print(json.dumps({"cases": len(write_cases(a.cases, a.seed))}))
    if a.hostile:
        print(json.dumps({"cases": len(hostile_cases(a.hostile))}))
    if a.command[:1] == ["write"] and len(a.command) == 2:
        with open(a.command[1]) if a.command[1] != "-" else sys.stdin as f:
            _spec_write(json.load(f))
    elif a.command[:1] == ["read"] and len(a.command) == 3:
        try:
            arr = read_array(a.command[1])
        except Malformed as e:
            print(f"shard_writer.py: {a.command[1]}: {e}", file=sys.stderr)
            return 1
        dump_raw(arr, a.command[2])
        meta = parse_metadata(a.command[1])
        print(json.dumps({"shape": list(arr.shape), "dtype": meta["data_type"]}))
    elif a.command:
        ap.error("commands: write SPEC.json | read ARRAY OUT.bin")
    elif not (a.self_test or a.cases or a.hostile):
        ap.error("nothing to do")
    return 0


if __name__ == "__main__":
    sys.exit(main())
