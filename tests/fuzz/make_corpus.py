#!/usr/bin/python3
"""make_corpus.py — (re)writes the seed corpus in tests/fuzz/corpus/.

    /usr/bin/python3 tests/fuzz/make_corpus.py build/bin

Seeds are small record files the fuzzer starts from: TagValue and TagMeta
buffers built by libshm (through record_tool), by python3-flatbuffers (fields
omitted, other orders, a newer schema with a nested chain) and a few damaged
ones. Files named crash-* or regress-* (inputs that once broke something)
are never touched. Uses the builders of tests/records/records_interop.py.
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "records"))
if len(sys.argv) > 1:
    os.environ["SHMBUS_BIN_DIR"] = os.path.abspath(sys.argv[1])
import records_interop as ri  # noqa: E402


def main():
    out = os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.startswith("seed-"):
            os.unlink(os.path.join(out, f))
    with tempfile.TemporaryDirectory(prefix="shmbus-corpus-") as tmp:
        pydir = os.path.join(tmp, "py")
        ri.run([ri.FLATC, "--python", "-o", pydir, "-I", ri.SCHEMAS,
                os.path.join(ri.SCHEMAS, "shmbus.fbs"), os.path.join(ri.SCHEMAS, "catalog.fbs")])
        sys.path.insert(0, pydir)
        import importlib
        py = dict(TagValue=importlib.import_module("shmbus.TagValue"),
                  TagMeta=importlib.import_module("shmbus.TagMeta"))
        seeds = {}
        vc, mc = ri.value_cases(), ri.meta_cases()
        for name, case in (("c-value-zero", vc[0]), ("c-value-max", vc[1]),
                           ("c-value-nan", vc[7])):
            seeds[name] = open(ri.c_encode(tmp, [case], "value")[0], "rb").read()
        for name, case in (("c-meta-empty", mc[0]), ("c-meta-typical", mc[1]),
                           ("c-meta-255", mc[2])):
            path = ri.c_encode(tmp, [case], "meta")[0]
            seeds[name] = open(path, "rb").read()
        seeds["py-value-all"] = ri.py_value(py, vc[3])
        seeds["py-value-reversed"] = ri.py_value(py, vc[3], order=list(reversed(ri.VALUE_FIELDS)))
        seeds["py-value-empty"] = ri.py_value(py, {})
        seeds["py-value-sparse"] = ri.py_value(py, dict(tag_id=5, quality=3, flags=7))
        seeds["py-meta-all"] = ri.py_meta(py, mc[1])
        seeds["py-meta-name-only"] = ri.py_meta(py, dict(name=b"t1"))
        seeds["py-meta-no-scale"] = ri.py_meta(py, dict(id=3, unit=b"bar", offset=2.5))
        future = ri.future_buffer(tmp)
        seeds["py-value-newer-schema"] = future
        typical = seeds["c-value-max"]
        seeds["bad-value-truncated"] = typical[:60]
        seeds["bad-value-identifier"] = typical[:4] + b"SHMX" + typical[8:]
        seeds["bad-value-vtable-odd"] = typical[:8] + b"\x15\x00" + typical[10:]
        meta = seeds["c-meta-typical"]
        seeds["bad-meta-unterminated"] = meta[:-1] + b"x"
        seeds["bad-meta-oversize-string"] = ri.py_meta(py, dict(name=b"n" * 256))
        for name, data in seeds.items():
            with open(os.path.join(out, f"seed-{name}.bin"), "wb") as f:
                f.write(data)
    print(f"{len(seeds)} seeds in {out}")


if __name__ == "__main__":
    main()
