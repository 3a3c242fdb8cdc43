"""The official `openai` client against a running `gptlab serve` (started by tests/serve.rs).

Usage: python3 tests/serve_openai.py URL API_KEY
Checks models, chat (plain and streaming), completions, n, errors (400 incl. an unknown argument, 401, 404) and eight
concurrent streaming clients. Exits non-zero on the first failure.
"""
import sys
import threading

import openai

url, key = sys.argv[1].rstrip("/") + "/v1", sys.argv[2]
client = openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)
ask = [{"role": "user", "content": "中国的首都是哪里?"}]


def expect_error(kind, status, call):
    try:
        call()
    except kind as e:
        assert e.status_code == status, (e.status_code, e)
        body = e.body if isinstance(e.body, dict) else {}
        # The client unwraps {"error": {...}}; the fields are OpenAI's.
        assert {"message", "type", "param", "code"} <= set(body), body
        return body
    raise AssertionError(f"expected {kind.__name__}")


models = [m.id for m in client.models.list().data]
assert models == ["base", "assistant", "html"], models

chat = client.chat.completions.create(model="assistant", messages=ask, max_tokens=8, seed=1)
assert chat.choices[0].message.role == "assistant"
assert chat.choices[0].finish_reason in ("stop", "length")
assert 0 < chat.usage.completion_tokens <= 8, chat.usage
assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens

# Same seed, same answer; greedy answers do not depend on the seed.
again = client.chat.completions.create(model="assistant", messages=ask, max_tokens=8, seed=1)
assert again.choices[0].message.content == chat.choices[0].message.content

streamed = client.chat.completions.create(
    model="assistant", messages=ask, max_tokens=8, seed=1, stream=True,
    stream_options={"include_usage": True},
)
parts, finish, usage = [], None, None
for chunk in streamed:
    if chunk.usage:
        usage = chunk.usage
    for c in chunk.choices:
        parts.append(c.delta.content or "")
        finish = c.finish_reason or finish
assert "".join(parts) == chat.choices[0].message.content, (parts, chat)
assert finish == chat.choices[0].finish_reason and usage.completion_tokens == chat.usage.completion_tokens

three = client.chat.completions.create(model="assistant", messages=ask, max_tokens=6, n=3, temperature=1.0)
assert [c.index for c in three.choices] == [0, 1, 2], three

done = client.completions.create(model="base", prompt="我今天想去游乐园玩", max_tokens=5, temperature=0)
assert done.object == "text_completion" and done.usage.completion_tokens <= 5, done
assert done.choices[0].text, done

stopped = client.completions.create(model="html", prompt="<|user|>", max_tokens=40, temperature=0, stop=["onerror"])
assert "onerror" not in stopped.choices[0].text, stopped

body = expect_error(openai.BadRequestError, 400,
                    lambda: client.chat.completions.create(model="assistant", messages=ask, temperature=5))
assert body["param"] == "temperature", body
expect_error(openai.BadRequestError, 400,
             lambda: client.chat.completions.create(model="assistant", messages=ask, n=99))
body = expect_error(openai.BadRequestError, 400,
                    lambda: client.completions.create(model="base", prompt="长" * 500))
assert body["code"] == "context_length_exceeded", body
# A misspelt argument is refused as OpenAI refuses it: a 400 naming the argument.
body = expect_error(openai.BadRequestError, 400,
                    lambda: client.chat.completions.create(model="assistant", messages=ask,
                                                           extra_body={"temprature": 0.5}))
assert body["param"] == "temprature" and "temprature" in body["message"], body
expect_error(openai.NotFoundError, 404,
             lambda: client.chat.completions.create(model="gpt-4", messages=ask))
for bad_key in ["wrong", ""]:
    other = openai.OpenAI(base_url=url, api_key=bad_key or "x", max_retries=0,
                          default_headers={} if bad_key else {"Authorization": ""})
    expect_error(openai.AuthenticationError, 401, lambda: other.models.list())

# A client that leaves mid-stream does not disturb the server.
gone = client.chat.completions.create(model="assistant", messages=ask, max_tokens=40, stream=True)
next(iter(gone))
gone.close()

# Eight streaming clients at once all finish.
results = [None] * 8


def stream_one(i):
    s = client.chat.completions.create(model=["assistant", "base"][i % 2], messages=ask,
                                       max_tokens=16, seed=i, stream=True)
    results[i] = [c.choices[0].finish_reason for c in s if c.choices and c.choices[0].finish_reason]


threads = [threading.Thread(target=stream_one, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join(timeout=60)
assert all(r and r[-1] in ("stop", "length") for r in results), results
print("openai client: all checks passed")
