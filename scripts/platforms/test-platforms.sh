#!/usr/bin/env bash
# npm run test:platforms (and .ci/run): installs the toolchains, builds the addon for the five
# other desktop targets (each once; unchanged ones are reused), then tests what can run here:
#   win32-x64 (windows-gnu build)  whole JS suite under wine, with node.exe
#   linux-x64-musl                 whole JS suite on a musl Node
#   linux-arm64-gnu                under qemu-user with the arm64 Node: the JS suite less the
#                                  tests that start node children, then the smoke script
#   linux-arm64-musl               the same with a musl arm64 Node
#   darwin-x64, darwin-arm64       compiled and checked to be Mach-O dylibs (nothing runs macOS)
#   win32-arm64 (gnullvm build)    compiled and checked to be an arm64 PE DLL
# Ends with one line per target and "platforms: N passed, N failed" (targets).
source "$(dirname "$0")/common.sh"
start=$SECONDS
logs="$CACHE/logs"
mkdir -p "$logs"

bash "$PLATFORMS_DIR/install-toolchains.sh"
log "toolchains: $((SECONDS - start)) s"

declare -A RESULT
passed=0
failed=0
record() { # suffix ok|FAIL text
  RESULT[$1]="$2  $3"
  if [[ "$2" == ok ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}

size_of() { stat -c %s "$OUT/$1/blender-mcp-pool.$1.node" 2>/dev/null || echo 0; }

# Builds one after another (2 cores); a failed build fails its target, the others go on.
declare -A BUILT
for suffix in "${SUFFIXES[@]}"; do
  t0=$SECONDS
  if nice -n 10 bash "$PLATFORMS_DIR/build-targets.sh" "$suffix" > "$logs/build-$suffix.log" 2>&1; then
    BUILT[$suffix]="built ($((SECONDS - t0)) s, $(size_of "$suffix") bytes)"
  else
    tail -n 30 "$logs/build-$suffix.log" >&2
    record "$suffix" FAIL "build failed (log: $logs/build-$suffix.log)"
  fi
  log "$suffix: ${BUILT[$suffix]:-build failed}"
done

# Windows arm64: compile only (nothing runs arm64 Windows here).
if [[ -n "${BUILT[win32-arm64-gnullvm]:-}" ]]; then
  kind="$(file -b "$OUT/win32-arm64-gnullvm/blender-mcp-pool.win32-arm64-gnullvm.node")"
  if [[ "$kind" == "PE32+ executable (DLL)"*"Aarch64"* ]]; then
    record win32-arm64-gnullvm ok "${BUILT[win32-arm64-gnullvm]}; compile only: $kind"
  else
    record win32-arm64-gnullvm FAIL "${BUILT[win32-arm64-gnullvm]}; not an arm64 Windows DLL: $kind"
  fi
fi

# The Windows build must import no C runtime DLL that desktops may lack.
if [[ -n "${BUILT[win32-x64-gnu]:-}" ]]; then
  imports="$(x86_64-w64-mingw32-objdump -p "$OUT/win32-x64-gnu/blender-mcp-pool.win32-x64-gnu.node" | sed -n 's/^\s*DLL Name: //p' | tr '\n' ' ')"
  log "win32-x64-gnu imports: $imports"
  if grep -qiE 'vcruntime|libgcc|libwinpthread|libstdc' <<<"$imports"; then
    record win32-x64-gnu FAIL "imports a runtime DLL: $imports"
    unset 'BUILT[win32-x64-gnu]'
  fi
fi

run_test() { # suffix script label
  local suffix="$1" script="$2" label="$3" t0=$SECONDS
  [[ -n "${BUILT[$suffix]:-}" ]] || return 0
  log "$suffix: $label"
  local rc=0
  # shellcheck disable=SC2086 # the script's arguments
  bash "$PLATFORMS_DIR/"$script > "$logs/test-$suffix.log" 2>&1 || rc=$?
  tail -n 40 "$logs/test-$suffix.log"
  if [[ $rc -ne 0 ]]; then
    # The tail above is the smoke's; a vitest failure is printed further up: show it whole.
    log "$suffix: failures"
    failures_of "$logs/test-$suffix.log"
  fi
  local result
  result="$(summary_of "$logs/test-$suffix.log" | sed -E 's/\x1b\[[0-9;]*m//g; s/^ +//')"
  if [[ $rc -eq 0 ]]; then
    record "$suffix" ok "${BUILT[$suffix]}; $label: $result ($((SECONDS - t0)) s)"
  else
    record "$suffix" FAIL "${BUILT[$suffix]}; $label: exit $rc, $result (log: $logs/test-$suffix.log)"
  fi
}

run_test win32-x64-gnu run-under-wine.sh "vitest under wine"
run_test linux-x64-musl run-under-musl.sh "vitest on musl Node"
run_test linux-arm64-gnu run-under-qemu.sh "vitest (no child processes) + smoke under qemu"
run_test linux-arm64-musl "run-under-qemu.sh musl" "vitest (no child processes) + smoke under qemu, musl Node"

for suffix in darwin-x64 darwin-arm64; do
  [[ -n "${BUILT[$suffix]:-}" ]] || continue
  want=x86_64
  [[ $suffix == darwin-arm64 ]] && want=arm64
  kind="$(file -b "$OUT/$suffix/blender-mcp-pool.$suffix.node")"
  if [[ "$kind" == "Mach-O 64-bit $want dynamically linked shared library"* ]]; then
    record "$suffix" ok "${BUILT[$suffix]}; compile only: $kind"
  else
    record "$suffix" FAIL "${BUILT[$suffix]}; not a $want Mach-O dylib: $kind"
  fi
done

echo
echo "== platforms ($((SECONDS - start)) s)"
for suffix in "${SUFFIXES[@]}"; do printf '%-16s %s\n' "$suffix" "${RESULT[$suffix]:-not run}"; done
echo "platforms: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
