"""Codec interop with the reference implementations.

numcodecs (the Zarr v2 reference) encodes data with every compressor config we
support; test_codec's driver mode must decode it exactly, and numcodecs must
decode what our encoder writes. N5's lz4 is checked against lz4-java itself
when its jar (Debian: liblz4-java) and a JDK are installed.

Run: LB_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/py_codec_interop.py
"""
import gzip
import json
import os
import shutil
import subprocess

import numcodecs
import numpy as np
import pytest

BUILD = os.environ.get("LB_BUILD_DIR", "build")
DRIVER = os.path.join(BUILD, "test_codec")
SEED = int(os.environ.get("LB_TEST_SEED", "20240611"))

DTYPES = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}


def setup_module(module):
    if not os.path.exists(DRIVER):
        pytest.fail(f"{DRIVER} not built (set LB_BUILD_DIR)")
    print(f"seed {SEED}")


def label_data(typesize, n, seed):
    """Runs of a few label ids, like a segmentation crop."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 40, size=max(1, n // 50 + 1))
    ids[ids % 7 == 0] = 0
    runs = np.repeat(ids, 50)[:n]
    if typesize == 8:
        runs = runs.astype("<u8") * 0x100000001  # use the high bytes too
    return runs.astype(DTYPES[typesize])


def random_data(typesize, n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=n * typesize, dtype=np.uint8).view(DTYPES[typesize])


def run_driver(*args):
    p = subprocess.run([DRIVER, *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p


def decode_ours(tmp_path, config, typesize, enc, nbytes):
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    src.write_bytes(enc)
    run_driver("decode", json.dumps(config), typesize, nbytes, src, dst)
    return dst.read_bytes()


def encode_ours(tmp_path, config, typesize, raw):
    src, dst = tmp_path / "raw.bin", tmp_path / "enc.bin"
    src.write_bytes(raw)
    run_driver("encode", json.dumps(config), typesize, src, dst)
    return dst.read_bytes()


def check_both_ways(tmp_path, config, typesize, arr):
    codec = numcodecs.get_codec(dict(config))
    raw = arr.tobytes()
    theirs = bytes(codec.encode(arr))
    assert decode_ours(tmp_path, config, typesize, theirs, len(raw)) == raw
    ours = encode_ours(tmp_path, config, typesize, raw)
    if raw:  # numcodecs 0.11 cannot decode its own empty blosc/zstd/lz4 frames
        assert bytes(codec.decode(ours)) == raw
    assert decode_ours(tmp_path, config, typesize, ours, len(raw)) == raw


BLOSC = [
    {"id": "blosc", "cname": cname, "clevel": clevel, "shuffle": shuffle, "blocksize": 0}
    for cname in ("lz4", "lz4hc", "zstd", "zlib", "blosclz")
    for shuffle in (0, 1, 2, -1)
    for clevel in (5,)
]


@pytest.mark.parametrize("typesize", [1, 2, 4, 8])
@pytest.mark.parametrize("config", BLOSC, ids=lambda c: f"{c['cname']}-sh{c['shuffle']}")
def test_blosc(tmp_path, config, typesize):
    check_both_ways(tmp_path, config, typesize, label_data(typesize, 20000, SEED))
    check_both_ways(tmp_path, config, typesize, random_data(typesize, 3001, SEED + 1))


def test_blosc_same_bytes(tmp_path):
    # Same library, same call: our frames are byte-identical to numcodecs'.
    arr = label_data(4, 50000, SEED)
    for cfg in BLOSC:
        cfg = dict(cfg)
        ours = encode_ours(tmp_path, cfg, 4, arr.tobytes())
        if cfg["shuffle"] == -1:
            continue  # numcodecs resolves -1 from the buffer's itemsize: same, but skip
        assert ours == bytes(numcodecs.get_codec(cfg).encode(arr)), cfg


OTHERS = (
    [{"id": "zstd", "level": lv} for lv in (-5, 1, 3, 9, 19)]
    + [{"id": "gzip", "level": lv} for lv in (0, 1, 6, 9)]
    + [{"id": "zlib", "level": lv} for lv in (0, 1, 6, 9)]
    + [{"id": "lz4", "acceleration": a} for a in (1, 5, 100)]
    + [{"id": "bz2", "level": lv} for lv in (1, 9)]
    + [
        {"id": "lzma", "format": 1, "check": -1, "preset": None, "filters": None},
        {"id": "lzma", "format": 1, "check": 0, "preset": 1, "filters": None},
        {"id": "lzma", "format": 1, "check": 1, "preset": 2, "filters": None},
        {"id": "lzma", "format": 1, "check": 10, "preset": 0, "filters": None},
    ]
)


@pytest.mark.parametrize("typesize", [1, 2, 4, 8])
@pytest.mark.parametrize("config", OTHERS, ids=lambda c: json.dumps(c, sort_keys=True))
def test_codecs(tmp_path, config, typesize):
    check_both_ways(tmp_path, config, typesize, label_data(typesize, 20000, SEED))
    check_both_ways(tmp_path, config, typesize, random_data(typesize, 3001, SEED + 2))


@pytest.mark.parametrize("config", BLOSC[:4] + OTHERS, ids=lambda c: json.dumps(c, sort_keys=True))
@pytest.mark.parametrize("n", [0, 1, 7])
def test_tiny(tmp_path, config, n):
    check_both_ways(tmp_path, config, 1, label_data(1, n, SEED))


def test_gzip_multimember_and_python_gzip(tmp_path):
    a = label_data(2, 3000, SEED)
    b = label_data(2, 1000, SEED + 5)
    raw = a.tobytes() + b.tobytes()
    two = gzip.compress(a.tobytes(), mtime=0) + gzip.compress(b.tobytes(), mtime=7)
    assert decode_ours(tmp_path, {"id": "gzip", "level": 1}, 2, two, len(raw)) == raw
    # our gzip is a member the gzip module reads
    ours = encode_ours(tmp_path, {"id": "gzip", "level": 6}, 2, raw)
    assert gzip.decompress(ours) == raw


def test_numcodecs_refusals(tmp_path):
    """Declared-size mismatches and truncation of reference frames are refused."""
    arr = label_data(4, 5000, SEED)
    raw = arr.tobytes()
    for cfg in [BLOSC[0], {"id": "zstd", "level": 1}, {"id": "lz4", "acceleration": 1},
                {"id": "gzip", "level": 1}]:
        enc = bytes(numcodecs.get_codec(cfg).encode(arr))
        src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
        for data, nbytes in [(enc, len(raw) + 4), (enc, len(raw) - 4), (enc[:-3], len(raw))]:
            src.write_bytes(data)
            p = subprocess.run([DRIVER, "decode", json.dumps(cfg), "4", str(nbytes), str(src),
                                str(dst)], capture_output=True, text=True)
            assert p.returncode != 0, (cfg, nbytes, len(data))
            assert "test_codec:" in p.stderr


# ---- N5 lz4 against lz4-java --------------------------------------------------

JAVA_SRC = r"""
import java.io.*;
import java.nio.file.*;
import net.jpountz.lz4.*;

public class Lz4Block {
    public static void main(String[] a) throws Exception {
        if (a[0].equals("encode")) {
            byte[] in = Files.readAllBytes(Paths.get(a[1]));
            ByteArrayOutputStream bos = new ByteArrayOutputStream();
            LZ4BlockOutputStream os = new LZ4BlockOutputStream(bos, Integer.parseInt(a[3]));
            os.write(in);
            os.close();
            Files.write(Paths.get(a[2]), bos.toByteArray());
        } else {
            InputStream is = new LZ4BlockInputStream(new FileInputStream(a[1]));
            ByteArrayOutputStream bos = new ByteArrayOutputStream();
            byte[] buf = new byte[65536];
            int k;
            while ((k = is.read(buf)) > 0) bos.write(buf, 0, k);
            Files.write(Paths.get(a[2]), bos.toByteArray());
        }
    }
}
"""


def lz4_java_jar():
    for p in ("/usr/share/java/lz4.jar", "/usr/share/java/lz4-java.jar"):
        if os.path.exists(p):
            return p
    return None


@pytest.fixture(scope="module")
def lz4_java(tmp_path_factory):
    jar = lz4_java_jar()
    if not jar or not shutil.which("javac") or not shutil.which("java"):
        pytest.skip("lz4-java (Debian liblz4-java) or a JDK is not installed")
    d = tmp_path_factory.mktemp("java")
    (d / "Lz4Block.java").write_text(JAVA_SRC)
    subprocess.run(["javac", "-cp", jar, "-d", str(d), str(d / "Lz4Block.java")], check=True)

    def run(*args):
        subprocess.run(["java", "-cp", f"{jar}:{d}", "Lz4Block", *map(str, args)], check=True)

    return run


@pytest.mark.parametrize("block", [64, 1000, 65536])
def test_n5_lz4_with_lz4_java(tmp_path, lz4_java, block):
    arr = np.concatenate([label_data(2, 40000, SEED), random_data(2, 20000, SEED + 9)])
    raw = arr.tobytes()
    cfg = {"type": "lz4", "blockSize": block}
    src, enc, back = tmp_path / "raw.bin", tmp_path / "enc.bin", tmp_path / "back.bin"
    src.write_bytes(raw)
    # lz4-java writes, we read
    lz4_java("encode", src, enc, block)
    assert decode_ours(tmp_path, cfg, 2, enc.read_bytes(), len(raw)) == raw
    # we write, lz4-java reads (it verifies the checksums)
    ours = encode_ours(tmp_path, cfg, 2, raw)
    enc.write_bytes(ours)
    lz4_java("decode", enc, back)
    assert back.read_bytes() == raw
    # byte-identical to lz4-java's stream (same LZ4 compressor and framing)
    lz4_java("encode", src, enc, block)
    assert ours == enc.read_bytes()
