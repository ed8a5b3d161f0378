# workload.py - dicts, strings, json, classes, sorting and a few threads;
# prints results and digests that must not depend on the allocator.
import hashlib
import json
import threading
from collections import Counter, defaultdict, OrderedDict


def lcg(seed):
    x = seed
    while True:
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        yield x >> 33


def digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


class Record:
    __slots__ = ("key", "tags", "value")

    def __init__(self, key, tags, value):
        self.key, self.tags, self.value = key, tags, value


def records(n, seed):
    r = lcg(seed)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    out = []
    for i in range(n):
        k = next(r)
        tags = [words[(k >> s) & 7] for s in (0, 3, 6)]
        out.append(Record("k%06d-%x" % (i, k & 0xFFFF), tags, (k % 100000) / 7.0))
    return out


def dict_work(recs):
    by_tag = defaultdict(list)
    for rec in recs:
        for t in rec.tags:
            by_tag[t].append(rec.key)
    index = {rec.key: rec for rec in recs}
    # grow and shrink a dict many times
    d = {}
    for round_ in range(5):
        for i in range(40000):
            d["r%d-%d" % (round_, i)] = i * round_
        for i in range(0, 40000, 2):
            del d["r%d-%d" % (round_, i)]
    return (
        {t: len(v) for t, v in sorted(by_tag.items())},
        len(index),
        len(d),
        sum(d.values()),
    )


def string_work(recs):
    text = " ".join("%s:%s" % (r.key, ",".join(r.tags)) for r in recs)
    parts = text.split(" ")
    upper = [p.upper() for p in parts if "gamma" in p]
    joined = "|".join(sorted(upper, key=lambda s: (len(s), s)))
    counts = Counter(w for p in parts for w in p.split(":")[1].split(","))
    s = ""
    for i in range(20000):  # quadratic-ish concatenation, reallocs
        s += chr(65 + i % 26)
    return len(text), len(upper), hashlib.md5(joined.encode()).hexdigest(), sorted(counts.items()), s[-30:]


def json_work(recs):
    docs = []
    for r in recs[:30000]:
        docs.append(OrderedDict(key=r.key, tags=r.tags, value=round(r.value, 3),
                                nested={"a": [1, 2, {"b": r.tags[0] * 3}]}))
    text = json.dumps(docs)
    back = json.loads(text)
    again = json.dumps(back, indent=1, sort_keys=True)
    return len(text), len(again), digest(back[::997])


def thread_work():
    results = {}
    lock = threading.Lock()

    def worker(n):
        local = {}
        for i in range(30000):
            local[str(i * n)] = [i] * (i % 5)
        total = sum(len(v) for v in local.values())
        with lock:
            results[n] = total

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(1, 5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sorted(results.items())


def main():
    recs = records(120000, 42)
    recs.sort(key=lambda r: (r.tags, r.key))
    print("records", len(recs), recs[0].key, recs[-1].key)
    print("dicts", dict_work(recs))
    print("strings", string_work(recs))
    print("json", json_work(recs))
    print("threads", thread_work())
    big = [list(range(i % 50)) for i in range(100000)]
    print("lists", sum(map(len, big)), digest(big[::5000]))


if __name__ == "__main__":
    main()
