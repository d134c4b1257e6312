#!/usr/bin/env bash
# Runs the seed example end to end: installs the schema, defers sum(a=3, b=5), runs a
# worker on the "sums" queue, and prints the file the task wrote (it holds 8).
#
# Database: PROCRASTINATE_DATABASE_URL when set; otherwise a private local PostgreSQL
# cluster is started (and PostgreSQL installed with apt when missing) by scripts/postgres.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ -z "${PROCRASTINATE_DATABASE_URL:-}" ]; then
  echo "quickstart: no PROCRASTINATE_DATABASE_URL; starting a private PostgreSQL" >&2
  PROCRASTINATE_DATABASE_URL=$(scripts/postgres.sh)
  export PROCRASTINATE_DATABASE_URL
fi

echo "quickstart: building" >&2
dotnet build samples/Quickstart -c Release -nologo -v quiet >&2

out=$(mktemp -d)/myfile
export QUICKSTART_OUTPUT=$out
dotnet samples/Quickstart/bin/Release/net10.0/Quickstart.dll all
test "$(cat "$out")" = "8" || { echo "quickstart: expected 8 in $out" >&2; exit 1; }
