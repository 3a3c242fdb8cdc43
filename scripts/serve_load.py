#!/usr/bin/env python3
"""A small, bounded load test of `gptlab serve`: tokens/s for S concurrent streaming clients.

Usage: python3 scripts/serve_load.py http://127.0.0.1:PORT/ --model assistant --streams 1 8

Each client sends REQUESTS streaming chat completions (up to MAX_TOKENS tokens each; fewer
when an answer ends) one after another; tokens/s is all completion tokens (as the server's
usage reports them) over the wall time. Only 127.0.0.1 /
localhost is accepted, and every request has a timeout: this is a measurement, not a flood.
"""
import argparse
import json
import threading
import time
import urllib.parse
import urllib.request


def stream_once(url, key, body, timeout):
    req = urllib.request.Request(url + "v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": "Bearer " + key} if key else {})})
    tokens = 0
    with urllib.request.urlopen(req, timeout=timeout) as res:
        for line in res:
            line = line.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return tokens


def measure(args, streams):
    totals = [0] * streams
    errors = []

    def client(i):
        for r in range(args.requests):
            body = {"model": args.model, "messages": [{"role": "user", "content": args.prompt}],
                    "max_tokens": args.max_tokens, "temperature": 1.0, "seed": i * 1000 + r,
                    "stream": True, "stream_options": {"include_usage": True}}
            try:
                totals[i] += stream_once(args.url, args.api_key, body, args.timeout)
            except Exception as e:  # reported, not retried
                errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"streams": streams, "requests": streams * args.requests, "tokens": sum(totals),
            "wall_s": round(wall, 2), "tokens_per_s": round(sum(totals) / wall, 1),
            "errors": errors}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--model", required=True)
    p.add_argument("--streams", type=int, nargs="+", default=[1, 8])
    p.add_argument("--requests", type=int, default=4, help="requests per client (max 20)")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--prompt", default="中国的首都是哪里?")
    p.add_argument("--api-key", default="")
    p.add_argument("--timeout", type=float, default=120)
    args = p.parse_args()
    host = urllib.parse.urlparse(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        p.error("only a server on this machine (127.0.0.1) may be load-tested")
    if not args.url.endswith("/"):
        args.url += "/"
    args.requests = max(1, min(args.requests, 20))
    args.streams = [max(1, min(s, 16)) for s in args.streams]
    for s in args.streams:
        print(json.dumps(measure(args, s)))


if __name__ == "__main__":
    main()
