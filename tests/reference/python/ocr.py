"""Reads images with rapidocr (the package that ships the PP-OCR models ims uses), for the OCR
accuracy test. Usage: ocr.py IMAGE... Prints JSON: {image: {"lines": [...], "seconds": s}}.

rapidocr runs with its own defaults (its detector input: shorter side at least 736), as a
customer using the package would; the models are the same files ims installs."""

import json
import sys
import time

from rapidocr import RapidOCR

engine = RapidOCR()
out = {}
for path in sys.argv[1:]:
    engine(path)  # warm-up, so that the timing is of a warm engine as ours is
    start = time.perf_counter()
    result = engine(path)
    seconds = time.perf_counter() - start
    lines = list(result.txts) if result.txts is not None else []
    out[path] = {"lines": lines, "seconds": seconds}
print(json.dumps(out, ensure_ascii=False))
