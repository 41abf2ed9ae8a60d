"""A fake ``kind`` / ``kubectl`` / ``docker`` for the kind backend's tests.

Installed as small shell wrappers (``exec python fake_tool.py <tool> "$@"``)
first on PATH. It appends ``{"tool", "argv", "stdin"}`` to
``$FAKE_TOOLS_DIR/calls.jsonl`` and answers from ``$FAKE_TOOLS_DIR/rules.json``:
the first rule whose ``tool`` matches and whose ``match`` regex is found in the
space-joined argv wins. A rule gives ``stdout`` (or ``stdout_file``),
``stderr``, ``rc``, an optional ``times`` (after that many uses the rule is
skipped), and ``linger`` (seconds to stay alive after printing, for
``port-forward``). No rule: exit 97 with a message, so unexpected calls fail
loudly. It never touches the network or a real cluster.
"""
import json
import os
import re
import sys
import time


def main() -> int:
    tool, argv = sys.argv[1], sys.argv[2:]
    state = os.environ["FAKE_TOOLS_DIR"]
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    with open(os.path.join(state, "calls.jsonl"), "a") as fh:
        fh.write(json.dumps({"tool": tool, "argv": argv, "stdin": stdin}) + "\n")
    with open(os.path.join(state, "rules.json")) as fh:
        rules = json.load(fh)
    counts_path = os.path.join(state, "counts.json")
    counts = json.load(open(counts_path)) if os.path.exists(counts_path) else {}
    joined = " ".join(argv)
    for i, rule in enumerate(rules):
        if rule.get("tool", tool) != tool or not re.search(rule.get("match", ""), joined):
            continue
        if "times" in rule and counts.get(str(i), 0) >= rule["times"]:
            continue
        counts[str(i)] = counts.get(str(i), 0) + 1
        with open(counts_path, "w") as fh:
            json.dump(counts, fh)
        out = rule.get("stdout", "")
        if "stdout_file" in rule:
            with open(rule["stdout_file"]) as fh:
                out = fh.read()
        sys.stdout.write(out)
        sys.stdout.flush()
        sys.stderr.write(rule.get("stderr", ""))
        sys.stderr.flush()
        if rule.get("linger"):
            time.sleep(rule["linger"])
        return int(rule.get("rc", 0))
    sys.stderr.write(f"fake {tool}: no rule for: {joined}\n")
    return 97


if __name__ == "__main__":
    sys.exit(main())
