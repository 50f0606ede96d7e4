"""Drives the ims server with the real Tencent Cloud Python SDK.

Reads one job as JSON on stdin, prints {"results": [...]} on stdout, one entry per call:
{"ok": <response>} or {"error": {"code", "message", "request_id"}}, with "sent" and
"answered" (monotonic seconds).

Job fields: endpoint (host:port), secret_id, secret_key, service ("ims", the default, or
"tiia"), version ("2020-12-29" or "2020-07-13"; tiia's "2019-05-29"), action (default ImageModeration; actions the SDK has no model for, such as
ims's policy actions, go through its generic `call_json`), method (POST or GET), sign
(TC3-HMAC-SHA256, HmacSHA1 or HmacSHA256), language (optional), params (the request),
time_offset (seconds added to the SDK's clock, to test expired signatures), count and
concurrency (a burst of identical calls from that many threads at once), endpoints (instead of
endpoint: call i of a burst goes to endpoints[i % len], the nodes of a cluster), protocol ("http";
absent, the SDK's default, https) and certification (a CA file the SDK trusts instead of
certifi's bundle).
"""
import importlib
import json
import sys
import threading
import time

from tencentcloud.common import abstract_client, credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile


class _ShiftedClock:
    """Stands in for the `time` module inside the SDK so its timestamps can be moved."""

    def __init__(self, offset):
        self.offset = offset

    def time(self):
        return time.time() + self.offset

    def __getattr__(self, name):
        return getattr(time, name)


def make_client(job):
    version, service = job["version"].replace("-", ""), job.get("service", "ims")
    module = importlib.import_module(f"tencentcloud.{service}.v{version}.{service}_client")
    http = HttpProfile(
        protocol=job.get("protocol"),
        endpoint=job["endpoint"],
        reqMethod=job.get("method", "POST"),
        reqTimeout=30,
        certification=job.get("certification"),
    )
    profile = ClientProfile(httpProfile=http, signMethod=job.get("sign", "TC3-HMAC-SHA256"))
    if job.get("language"):
        profile.language = job["language"]
    cred = credential.Credential(job["secret_id"], job["secret_key"])
    return getattr(module, f"{service.capitalize()}Client")(cred, "ap-guangzhou", profile)


def call(job, barrier):
    version, service = job["version"].replace("-", ""), job.get("service", "ims")
    models = importlib.import_module(f"tencentcloud.{service}.v{version}.models")
    action = job.get("action", "ImageModeration")
    client = make_client(job)
    typed = hasattr(models, f"{action}Request")
    if typed:
        request = getattr(models, f"{action}Request")()
        request.from_json_string(json.dumps(job.get("params", {})))
    if barrier is not None:
        barrier.wait()
    sent = time.monotonic()
    try:
        if not typed:
            # ims's own actions (policies...): the SDK's generic, signed JSON call.
            result = {"ok": client.call_json(action, job.get("params", {}))["Response"]}
        else:
            response = getattr(client, action)(request)
            result = {"ok": json.loads(response.to_json_string())}
    except TencentCloudSDKException as e:
        result = {"error": {"code": e.get_code(), "message": e.get_message(), "request_id": e.get_request_id()}}
    # When the call left and when its answer came (seconds, one clock for the whole job), so a
    # test can tell whether a burst arrived within one rate-limit window.
    result["sent"], result["answered"] = sent, time.monotonic()
    return result


def main():
    job = json.load(sys.stdin)
    if job.get("time_offset"):
        abstract_client.time = _ShiftedClock(job["time_offset"])
    count = job.get("count", 1)
    concurrency = max(1, min(job.get("concurrency", 1), count))
    results = [None] * count
    barrier = threading.Barrier(concurrency) if concurrency > 1 else None

    def worker(indices):
        for i in indices:
            nodes = job.get("endpoints")
            target = dict(job, endpoint=nodes[i % len(nodes)]) if nodes else job
            results[i] = call(target, barrier if i < concurrency else None)

    threads = [threading.Thread(target=worker, args=(range(t, count, concurrency),)) for t in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
