"""Checks that two folders of inbound files hold the same users with the same traits.

    python3 scripts/compare_outputs.py OUT_A OUT_B

Traits are compared as sets per user, after removing optional quotes around keys and values,
so line order, trait order, part boundaries and quoting style do not matter.
"""
import gzip
import os
import sys


def elements(traits):
    out, cur, quoted = [], [], False
    for ch in traits:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return out


def normalize(element):
    if "=" in element and not element.startswith(("d_sid=", "d_unsid=", "ic=")):
        key, _, value = element.partition("=")
        return key.strip().strip('"') + "=" + value.strip().strip('"')
    return element.strip()


def load(folder):
    users = {}
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            path = os.path.join(root, name)
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as f:
                for line in f:
                    uid, _, traits = line.rstrip("\n").partition("\t")
                    users.setdefault(uid, set()).update(normalize(e) for e in elements(traits))
    return users


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    if a == b:
        print(f"outputs match: {len(a)} users, {sum(len(t) for t in a.values())} traits")
        return 0
    only_a = set(a) - set(b)
    only_b = set(b) - set(a)
    differ = [u for u in set(a) & set(b) if a[u] != b[u]]
    print(f"outputs differ: {len(only_a)} users only in {sys.argv[1]}, {len(only_b)} only in {sys.argv[2]}, {len(differ)} with different traits")
    for u in differ[:5]:
        print(f"  {u}: {sorted(a[u] - b[u])} vs {sorted(b[u] - a[u])}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
