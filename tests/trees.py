"""Whole output trees read and compared byte for byte: what one labelbin
process writes against what MPI ranks or Dask workers write
(tests/py_mpi.py, tests/py_dask.py), outputs after a kill and a resume
(tests/py_hostile.py), outputs of local and remote reads
(tests/remote/datasets.py)."""
import os


def tree(root, folders=True):
    """{relative path: bytes, or None for a folder} of everything below root
    (folders=False: files only)."""
    out = {}
    for d, dirs, files in os.walk(root):
        for x in dirs if folders else ():
            out[os.path.relpath(os.path.join(d, x), root) + "/"] = None
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def assert_same_tree(a, b):
    ta, tb = tree(a), tree(b)
    assert ta, f"{a} is empty"
    assert sorted(ta) == sorted(tb), \
        f"files differ: only in {a}: {sorted(set(ta) - set(tb))[:5]}, " \
        f"only in {b}: {sorted(set(tb) - set(ta))[:5]}"
    bad = [k for k in ta if ta[k] != tb[k]]
    assert not bad, f"{b}: {len(bad)} files differ from {a}, e.g. {bad[:5]}"
