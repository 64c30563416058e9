#!/bin/sh
# Creates the shop's git repository in DEST/shop.git with three tagged
# versions — v1, v2 (a new answer) and v3 (broken: /health answers 500) —
# and DEST/environment-vN.yml for each, from environment.yml.
#   examples/shop/make-repo.sh DEST
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=$1
repo="$dest/shop.git"
rm -rf "$repo"
mkdir -p "$repo"
git -C "$repo" init -q
git -C "$repo" config user.email shop@example.invalid
git -C "$repo" config user.name shop
for v in v1 v2 v3; do
  healthy=True
  [ "$v" = v3 ] && healthy=False
  sed -e "s/^VERSION = .*/VERSION = \"$v\"/" -e "s/^HEALTHY = .*/HEALTHY = $healthy/" \
    "$here/app.py" >"$repo/app.py"
  git -C "$repo" add app.py
  git -C "$repo" commit -q -m "shop $v"
  git -C "$repo" tag "$v"
  sed -e "s|REPOSITORY|$repo|" -e "s/revision: v1/revision: $v/" \
    "$here/environment.yml" >"$dest/environment-$v.yml"
done
echo "$repo"
