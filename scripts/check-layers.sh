#!/usr/bin/env bash
# Keeps the module layering of STYLE.md true: a module may include only the headers of the
# modules it depends on. Prints every forbidden include and fails if there is one.
set -euo pipefail
cd "$(dirname "$0")/../src"

# module: the modules whose headers it may include (besides its own)
declare -A allowed=(
  [util]=""
  [chat]="util"
  [proto]="util chat"
  [store]="util chat"
  [blob]="util chat"
  [net]="util"
  [server]="util chat proto store blob net"
)

status=0
for module in "${!allowed[@]}"; do
  [[ -d $module ]] || continue
  while IFS= read -r line; do
    file=${line%%:*}
    included=$(sed -E 's/.*#include "([^/]+)\/.*/\1/' <<<"$line")
    [[ $included == "$module" ]] && continue
    ok=0
    for dep in ${allowed[$module]}; do [[ $included == "$dep" ]] && ok=1; done
    # Tests may use the in-memory store and proto's codec to exercise the domain.
    if [[ $ok -eq 0 && $file == *_test.cpp && $included =~ ^(store|proto)$ ]]; then ok=1; fi
    if [[ $ok -eq 0 ]]; then
      echo "layering: $module/${file#*/} includes $included/ (allowed: ${allowed[$module]:-nothing})"
      status=1
    fi
  done < <(grep -rHn '#include "[a-z_]*/' "$module" | sed -E 's/^([^:]+):[0-9]+:/\1:/')
done
[[ $status -eq 0 ]] && echo "layering: ok"
exit $status
