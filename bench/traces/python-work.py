# SPDX-License-Identifier: MIT
# The program whose allocations bench/traces/python.trace.gz holds (see
# record.sh): parse six modules of Python's standard library, count the
# kinds of syntax nodes and the names, print the code back from the syntax
# tree, find its words with a regular expression, and round-trip the
# counts through JSON.
import ast
import collections
import glob
import json
import re
import sys

root = sys.argv[1]
names = collections.Counter()
kinds = collections.Counter()
for f in sorted(glob.glob(root + "/email/*.py"))[:6]:
    with open(f) as src:
        tree = ast.parse(src.read(), f)
    for node in ast.walk(tree):
        kinds[type(node).__name__] += 1
        if isinstance(node, ast.Name):
            names[node.id] += 1
    text = ast.unparse(tree)
    names.update(w.lower() for w in re.findall(r"[A-Za-z_]+", text) if len(w) > 3)
doc = json.dumps({"kinds": kinds.most_common(), "names": names.most_common(200)})
back = json.loads(doc)
print(len(back["kinds"]), len(back["names"]), sum(kinds.values()))
