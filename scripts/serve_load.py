#!/usr/bin/env python3
"""A small, bounded load test of `gptlab serve`: tokens/s for S concurrent streaming clients.

Usage: python3 scripts/serve_load.py http://127.0.0.1:PORT/ --model assistant --streams 1 8

Each client sends REQUESTS streaming chat completions (up to MAX_TOKENS tokens each; fewer
when an answer ends) one after another; tokens/s is all completion tokens (as the server's
usage reports them) over the wall time. Only 127.0.0.1 /
localhost is accepted, and every request has a timeout: this is a measurement, not a flood.

Each client is its own process with one kept-alive connection, as a real client (the `openai`
package) keeps one: Python threads would share one interpreter lock, and the client, not the
server, would set the pace of many streams.
"""
import argparse
import http.client
import json
import multiprocessing
import time
import urllib.parse


def stream_once(conn, path, headers, body):
    """One streamed request on the kept-alive `conn`; its completion tokens (from usage)."""
    conn.request("POST", path + "v1/chat/completions", json.dumps(body), headers)
    res = conn.getresponse()
    if res.status != 200:
        raise RuntimeError(f"HTTP {res.status}: {res.read()[:200]!r}")
    tokens = 0
    for line in res:
        if line.startswith(b"data: {") and b'"usage"' in line:
            usage = json.loads(line[6:]).get("usage")
            if usage:
                tokens = usage["completion_tokens"]
    return tokens


def client(i, args, results):
    url = urllib.parse.urlparse(args.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=args.timeout)
    headers = {"Content-Type": "application/json",
               **({"Authorization": "Bearer " + args.api_key} if args.api_key else {})}
    tokens, errors = 0, []
    for r in range(args.requests):
        body = {"model": args.model, "messages": [{"role": "user", "content": args.prompt}],
                "max_tokens": args.max_tokens, "temperature": 1.0, "seed": i * 1000 + r,
                "stream": True, "stream_options": {"include_usage": True}}
        try:
            tokens += stream_once(conn, url.path, headers, body)
        except Exception as e:  # reported, not retried
            errors.append(repr(e))
            conn.close()
    conn.close()
    results.put((tokens, errors))


def measure(args, streams):
    results = multiprocessing.Queue()
    clients = [multiprocessing.Process(target=client, args=(i, args, results))
               for i in range(streams)]
    start = time.perf_counter()
    for c in clients:
        c.start()
    done = [results.get(timeout=args.timeout * args.requests) for _ in clients]
    wall = time.perf_counter() - start
    for c in clients:
        c.join()
    tokens = sum(t for t, _ in done)
    return {"streams": streams, "requests": streams * args.requests, "tokens": tokens,
            "wall_s": round(wall, 2), "tokens_per_s": round(tokens / wall, 1),
            "errors": [e for _, es in done for e in es]}


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
