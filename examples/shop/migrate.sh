#!/bin/sh
# The shop's migrations, SQL files in migrations/ applied in name order
# to $DATABASE_URL, each in one transaction with its record in
# shop_migrations:
#   migrate.sh pending   exit 0 when some are pending, 1 when none, 2 on error
#   migrate.sh apply     apply the pending ones
set -u
cd "$(dirname "$0")"
q() { psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qtAX "$@"; }
applied() {
  there=$(q -c "SELECT to_regclass('public.shop_migrations') IS NOT NULL") || exit 2
  [ "$there" = t ] || return 0
  q -c "SELECT name FROM shop_migrations" || exit 2
}
done_list=$(applied)
case "${1:-}" in
pending)
  for f in migrations/*.sql; do
    n=$(basename "$f" .sql)
    printf '%s\n' "$done_list" | grep -qx "$n" || { echo "pending: $n"; exit 0; }
  done
  exit 1
  ;;
apply)
  q -c "CREATE TABLE IF NOT EXISTS shop_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())" || exit 2
  for f in migrations/*.sql; do
    n=$(basename "$f" .sql)
    printf '%s\n' "$done_list" | grep -qx "$n" && continue
    q --single-transaction -f "$f" -c "INSERT INTO shop_migrations (name) VALUES ('$n')" || exit 2
    echo "applied $n"
  done
  ;;
*)
  echo "usage: migrate.sh pending|apply" >&2; exit 64
  ;;
esac
