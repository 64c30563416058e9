#!/bin/sh
# Creates the shop's git repository in DEST/shop.git with tagged
# versions — v1, v2 (a new answer), v3 (broken: /health answers 500) and
# v4 (a migration that adds a table and a row the app shows, and a new
# database spec), plus v4-bad (v4 with a migration that fails), v6 (a
# second migration), v6-unhealthy (v6 that never gets healthy) and v7 (a
# third migration) — and
# DEST/environment-vN.yml for each, from
# environment.yml, pointing at PostgreSQL and Redis as the environment
# says (PG_ADMIN_URL, REDIS_URL; default: the local servers).
#   examples/shop/make-repo.sh DEST
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=$1
pg=${PG_ADMIN_URL:-postgresql://postgres@/postgres}
redis=${REDIS_URL:-redis://127.0.0.1:6379}
repo="$dest/shop.git"
rm -rf "$repo"
mkdir -p "$repo/migrations"
git -C "$repo" init -q
git -C "$repo" config user.email shop@example.invalid
git -C "$repo" config user.name shop
cp "$here/migrate.sh" "$repo/migrate.sh"
cp "$here/migrations/001_items.sql" "$repo/migrations/"
for v in v1 v2 v3 v4; do
  healthy=True notes=False
  [ "$v" = v3 ] && healthy=False
  if [ "$v" = v4 ]; then
    notes=True
    cp "$here/migrations/002_notes.sql" "$repo/migrations/"
  fi
  sed -e "s/^VERSION = .*/VERSION = \"$v\"/" -e "s/^HEALTHY = .*/HEALTHY = $healthy/" \
    -e "s/^NOTES = .*/NOTES = $notes/" "$here/app.py" >"$repo/app.py"
  git -C "$repo" add app.py migrate.sh migrations
  git -C "$repo" commit -q -m "shop $v"
  git -C "$repo" tag "$v"
  sed -e "s|REPOSITORY|$repo|" -e "s/revision: v1/revision: $v/" \
    -e "s|PG_ADMIN_URL|$pg|" -e "s|REDIS_URL|$redis|" \
    "$here/environment.yml" >"$dest/environment-$v.yml"
done
# v4 also changes its database's spec: the database gets instance 2.
sed -i '/^    engine: postgresql$/a\    version: "2"' "$dest/environment-v4.yml"
# v4-bad: v4 whose migration fails half-way (its transaction is rolled back).
git -C "$repo" checkout -q -b bad-migration v4
printf '%s\n' "-- Fails half-way: the table is made, then an error." \
  "CREATE TABLE notes (id serial PRIMARY KEY, note text NOT NULL);" \
  "INSERT INTO notes (missing_column) VALUES ('x');" >"$repo/migrations/002_notes.sql"
git -C "$repo" commit -q -am "shop v4 with a failing migration"
git -C "$repo" tag v4-bad
git -C "$repo" checkout -q --detach v4
sed -e "s/revision: v4/revision: v4-bad/" "$dest/environment-v4.yml" >"$dest/environment-v4-bad.yml"
# v6: v4 with a second migration (003); v6-unhealthy: v6 whose migration
# commits but whose /health answers 500 (the hosts must stay in maintenance).
printf '%s\n' "INSERT INTO notes (note) VALUES ('hello from v6');" >"$repo/migrations/003_more.sql"
sed -i -e 's/^VERSION = .*/VERSION = "v6"/' "$repo/app.py"
git -C "$repo" add app.py migrations
git -C "$repo" commit -q -m "shop v6"
git -C "$repo" tag v6
sed -i -e 's/^HEALTHY = .*/HEALTHY = False/' "$repo/app.py"
git -C "$repo" commit -q -am "shop v6, unhealthy"
git -C "$repo" tag v6-unhealthy
# v7: v6 with a third migration (004).
git -C "$repo" checkout -q --detach v6
printf '%s\n' "INSERT INTO notes (note) VALUES ('hello from v7');" >"$repo/migrations/004_more.sql"
sed -i -e 's/^VERSION = .*/VERSION = "v7"/' "$repo/app.py"
git -C "$repo" add app.py migrations
git -C "$repo" commit -q -m "shop v7"
git -C "$repo" tag v7
git -C "$repo" checkout -q --detach v4
for v in v6 v6-unhealthy v7; do
  sed -e "s/revision: v4/revision: $v/" "$dest/environment-v4.yml" >"$dest/environment-$v.yml"
done
echo "$repo"
