#!/usr/bin/env python3
"""Extracts the demo model's corpus: the King James Bible from Debian's bible-kjv-text package
(public domain), read with its `bible` program, as plain prose — one verse per line, a blank
line between chapters, verse references removed. Every 20th chapter (the 11th, 31st, ...) is
held out for evaluation (5%); interleaving keeps both sets spread over all books.

    sudo apt-get install bible-kjv          # the `bible` program and its text
    tools/train-demo/extract_corpus.py OUT_DIR   # writes OUT_DIR/train.txt and OUT_DIR/eval.txt

Deterministic: the same package version gives byte-identical files (their SHA-256 is printed).
"""
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

REFERENCE = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if shutil.which("bible") is None:
        print("error: the `bible` program is missing; install it with: apt-get install bible-kjv",
              file=sys.stderr)
        return 1
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    # -f toggles pretty-printing off: one "Book<chapter>:<verse> text" line per verse.
    raw = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True,
                         text=True).stdout
    chapters = []
    current = None
    for line in raw.splitlines():
        m = REFERENCE.match(line)
        if m is None:
            raise SystemExit(f"error: unexpected line from `bible`: {line!r}")
        key = (m.group(1), m.group(2))
        if key != current:
            chapters.append([])
            current = key
        chapters[-1].append(m.group(4).strip())
    train, held_out = [], []
    for i, verses in enumerate(chapters):
        (held_out if i % 20 == 10 else train).append("\n".join(verses))
    for name, part in (("train.txt", train), ("eval.txt", held_out)):
        text = "\n\n".join(part) + "\n"
        (out / name).write_text(text, encoding="utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()
        print(f"{name}: {len(part)} chapters, {len(text.encode())} bytes, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
