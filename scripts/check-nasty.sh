#!/usr/bin/env bash
# Runs `sonoprint analyze --json` on every `nasty/` entry of the corpus manifest and checks that
# it ends by itself with exit status 0 or 1, prints exactly one JSON object, and that the object
# matches the `expect` column:
#   ok     -> a fingerprint
#   error  -> an error
#   either -> a fingerprint or an error
#   skip   -> a classified error, returned at once (under 2 s)
# Usage: scripts/check-nasty.sh [CORPUS_DIR]   (default ~/.cache/sonoprint-corpus)
# The binary is $SONOPRINT, else target/release/sonoprint of this checkout.
set -u

corpus=${1:-$HOME/.cache/sonoprint-corpus}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SONOPRINT:-$here/target/release/sonoprint}
manifest=$corpus/manifest.tsv

[ -x "$bin" ] || { echo "no sonoprint binary at $bin (cargo build --release)" >&2; exit 2; }
[ -f "$manifest" ] || { echo "no manifest at $manifest" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is needed to read the JSON" >&2; exit 2; }

out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

total=0 bad=0
printf '%-40s %-6s %-6s %6s  %-4s %s\n' "path" "expect" "exit" "secs" "ok?" "result"
while IFS=$'\t' read -r path source format expect; do
    case $path in nasty/*) ;; *) continue ;; esac
    total=$((total + 1))
    t0=$(date +%s.%N)
    timeout 120 "$bin" analyze --json "$corpus/$path" >"$out" 2>"$err" </dev/null
    rc=$?
    t1=$(date +%s.%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    # What the output says: "fingerprint", "error:<class>", or "bad:<why>".
    verdict=$(python3 - "$out" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8", errors="replace").read().splitlines() if l.strip()]
if len(lines) != 1:
    print(f"bad:{len(lines)} lines"); sys.exit()
try:
    o = json.loads(lines[0])
except ValueError:
    print("bad:not JSON"); sys.exit()
if not isinstance(o, dict) or "path" not in o:
    print("bad:no path")
elif "fingerprint" in o and "metadata" in o and "error" not in o:
    fp = o["fingerprint"]
    print("fingerprint" if isinstance(fp, dict) and len(fp) == 25 else "bad:fingerprint has %d names" % len(fp))
elif "error" in o and "fingerprint" not in o:
    e = o["error"]
    if isinstance(e, dict) and e.get("class") and e.get("message"):
        print("error:" + e["class"])
    else:
        print("bad:error without class or message")
else:
    print("bad:neither fingerprint nor error")
EOF
)
    good=yes
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
        good=no
        [ "$rc" -eq 124 ] && verdict="bad:killed by timeout 120" || verdict="bad:exit $rc; $verdict"
    else
        case $verdict in bad:*) good=no ;; esac
        case $expect:$verdict in
            ok:fingerprint | error:error:* | either:fingerprint | either:error:*) ;;
            skip:error:*)
                awk -v s="$secs" 'BEGIN { exit !(s < 2) }' || { good=no; verdict="$verdict (slow: ${secs} s)"; } ;;
            *) good=no ;;
        esac
        # Exit status must agree with the object.
        case $rc:$verdict in 0:fingerprint | 1:error:*) ;; *) good=no ;; esac
    fi
    [ $good = yes ] || bad=$((bad + 1))
    printf '%-40s %-6s %-6s %6s  %-4s %s\n' "$path" "$expect" "$rc" "$secs" "$good" "$verdict"
done <"$manifest"

echo "nasty: $total checked, $((total - bad)) as expected, $bad mismatched"
[ "$bad" -eq 0 ]
