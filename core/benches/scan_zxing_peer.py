#!/usr/bin/env python3
"""Peer decoders for the scanning benchmark (core/benches/scan.rs runs this).

Reads the same image sets as the Rust benchmark -- directories of N.png|jpg
with the expected text in N.txt -- and prints one JSON object: per set, how
many images each peer decoded to exactly the expected text, and the median
time per image (decode only; file loading and grey conversion excluded, as in
the Rust side).

Peers: zxing-cpp (PyPI `zxing-cpp`) always; zbar when the Debian `zbarimg`
tool is installed (run per file, so its time includes process start and is
reported separately, not comparable).

Sets named `count/...` are BoofCV-style: N.txt holds the hand-marked corners
of every code (four `x y` lines per code, `#` comments, `SETS` separators)
and no text; a hit is a distinct decoded text, at most one per marked code.

Usage: scan_zxing_peer.py [--repeat N] NAME=DIR [NAME=DIR ...]
"""

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time

from PIL import Image
import zxingcpp


def load_set(directory):
    items = []
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        txt = os.path.join(directory, stem + ".txt")
        if not os.path.exists(txt):
            continue
        with open(txt, "rb") as f:
            expected = f.read().decode("utf-8", errors="replace")
        path = os.path.join(directory, name)
        grey = Image.open(path).convert("L")
        grey.load()
        items.append((path, grey, expected))
    return items


def marked_codes(text):
    """Number of codes in a BoofCV corner file: coordinates / 8 (four x y
    points per code, one per line or all on one line after `SETS`)."""
    numbers = 0
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for part in line.split():
            try:
                float(part)
                numbers += 1
            except ValueError:
                pass
    return numbers // 8


def zxing_cpp(items, repeat, counting=False):
    hits = 0
    codes = 0
    anything = 0
    times = []
    for _path, grey, expected in items:
        best = None
        found = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            results = zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormat.QRCode)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
            found = [r.text for r in results]
        times.append(best)
        if found:
            anything += 1
        if counting:
            n = marked_codes(expected)
            codes += n
            hits += min(len(set(found)), n)
        elif expected in found:
            hits += 1
    out = {"images": len(items), "hits": hits, "any": anything,
           "median_ms": 1000 * quantile(times, 0.5) if times else None,
           "p90_ms": 1000 * quantile(times, 0.9) if times else None}
    if counting:
        out["codes"] = codes
    return out


def quantile(times, q):
    """Nearest-rank quantile, as the Rust side computes it."""
    s = sorted(times)
    i = min(max(math.ceil(len(s) * q), 1), len(s)) - 1
    return s[i]


def zbar(items):
    exe = shutil.which("zbarimg")
    if exe is None:
        return None
    hits = 0
    times = []
    for path, _grey, expected in items:
        t0 = time.perf_counter()
        out = subprocess.run([exe, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path],
                             capture_output=True)
        times.append(time.perf_counter() - t0)
        text = out.stdout.decode("utf-8", errors="replace")
        if text.endswith("\n"):
            text = text[:-1]
        if expected == text or expected in text.split("\n"):
            hits += 1
    return {"images": len(items), "hits": hits, "median_ms_incl_process": 1000 * statistics.median(times) if times else None}


def main(argv):
    repeat = 1
    sets = []
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--repeat":
            repeat = int(args.pop(0))
        else:
            name, _, directory = a.partition("=")
            sets.append((name, directory))
    version = getattr(zxingcpp, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as v
            version = v("zxing-cpp")
        except Exception:  # noqa: BLE001 - version is informational only
            version = "unknown"
    report = {"zxing_cpp_version": version, "zbar": shutil.which("zbarimg") is not None, "sets": {}}
    for name, directory in sets:
        items = load_set(directory)
        counting = name.startswith("count/")
        entry = {"zxing_cpp": zxing_cpp(items, repeat, counting)}
        zb = None if counting else zbar(items)
        if zb is not None:
            entry["zbar"] = zb
        report["sets"][name] = entry
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
