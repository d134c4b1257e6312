#!/usr/bin/env bash
# Runs the whole test suite against a real PostgreSQL and ends with "N passed, N failed, N skipped".
#
# Database: PROCRASTINATE_TEST_DATABASE_URL when set (each test class creates its own
# database on that server); otherwise a private local cluster is started, and PostgreSQL
# installed with apt when missing, by scripts/postgres.sh.
# Extra arguments go to `dotnet test` (for example --filter "FullyQualifiedName~Worker").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ -z "${PROCRASTINATE_TEST_DATABASE_URL:-}" ]; then
  echo "test.sh: no PROCRASTINATE_TEST_DATABASE_URL; starting a private PostgreSQL" >&2
  PROCRASTINATE_TEST_DATABASE_URL=$(scripts/postgres.sh)
  export PROCRASTINATE_TEST_DATABASE_URL
fi

log=$(mktemp)
status=0
echo "test.sh: building and running the tests" >&2
dotnet test Procrastinate.slnx -c Release --nologo "$@" 2>&1 | tee "$log" || status=$?

# Sum the per-assembly summaries ("Failed!  - Failed: 1, Passed: 10, Skipped: 0, ...").
read -r passed failed skipped < <(grep -E '^(Passed|Failed)!' "$log" | awk '
  { for (i = 1; i <= NF; i++) { gsub(",", "", $(i+1));
      if ($i == "Passed:") p += $(i+1); if ($i == "Failed:") f += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
  END { print p + 0, f + 0, s + 0 }')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # The build or the test host failed before reporting tests: count that as a failure.
  failed=1
fi
rm -f "$log"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ]
