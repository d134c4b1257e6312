#!/usr/bin/env bash
# Runs the OrdersWeb sample: an ASP.NET Core API that stores orders with EF Core and confirms
# them in a Procrastinate job, run by a worker hosted in the same process.
#
#   samples/OrdersWeb/run.sh [extra dotnet run arguments]
#
# Database: ConnectionStrings__Procrastinate or PROCRASTINATE_DATABASE_URL when set; otherwise a
# private local PostgreSQL cluster started by scripts/postgres.sh (which installs PostgreSQL with
# apt when missing). Listens on ORDERS_URLS (default http://127.0.0.1:5080).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ -z "${PROCRASTINATE_DATABASE_URL:-}" ] && [ -z "${ConnectionStrings__Procrastinate:-}" ]; then
  echo "run.sh: no PROCRASTINATE_DATABASE_URL; starting a private PostgreSQL" >&2
  PROCRASTINATE_DATABASE_URL=$("$root/scripts/postgres.sh")
  export PROCRASTINATE_DATABASE_URL
fi

urls=${ORDERS_URLS:-http://127.0.0.1:5080}
echo "run.sh: starting OrdersWeb on $urls; then, for example:" >&2
echo "  curl -s -X POST $urls/orders -H 'Content-Type: application/json' -d '{\"customer\": \"Ada\", \"total\": 42}'" >&2
echo "  curl -s $urls/orders/1; curl -s $urls/health" >&2
exec dotnet run --project "$here" -- --urls "$urls" "$@"
