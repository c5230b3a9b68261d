#!/usr/bin/env bash
# Minimal, idempotent fixes for @vercel/cosmosdb-server 1.0.1 when driven by the Go azcosmos SDK.
# `npm ci` restores the unpatched files, so standins.sh runs this at every start.
#   1. ReadItem of a missing id (or wrong partition key) throws a TypeError -> HTTP 500; Azure says 404.
#   2. TransactionalBatch: the Go SDK sends the partition key once, in the x-ms-documentdb-partitionkey
#      request header; the server expects it in every operation -> HTTP 500 on Read/Replace/Upsert/Delete.
#   3. /pkranges returns "id": 0 (a number); the Go SDK wants a string (ReadManyItems, feed ranges).
# Each fix is checked afterwards: if a future version moves the code, this fails loudly instead of
# leaving a half-patched server.
set -euo pipefail
cd "$(dirname "$0")"
L=node_modules/@vercel/cosmosdb-server/lib
[ -d "$L" ] || { echo "patch-cosmosdb-server: $L is missing (run npm ci first)" >&2; exit 1; }

grep -q '!data || data\[path\]' "$L/handler/read-document.js" ||
  sed -i 's/if (data\[path\] !== clientKeys\[i\])/if (!data || data[path] !== clientKeys[i])/' "$L/handler/read-document.js"

grep -q 'input.partitionKey === undefined' "$L/handler/batch-documents.js" ||
  sed -i 's/const input = body\[i\];/const input = body[i]; if (input \&\& input.partitionKey === undefined) input.partitionKey = req.headers["x-ms-documentdb-partitionkey"];/' "$L/handler/batch-documents.js"

sed -i 's/^\(\s*\)id: 0,$/\1id: "0",/' "$L/account/collection.js"

ok=true
grep -q '!data || data\[path\]' "$L/handler/read-document.js" || { echo "patch-cosmosdb-server: fix 1 (read-document.js) did not apply" >&2; ok=false; }
grep -q 'input.partitionKey === undefined' "$L/handler/batch-documents.js" || { echo "patch-cosmosdb-server: fix 2 (batch-documents.js) did not apply" >&2; ok=false; }
grep -q 'id: "0",' "$L/account/collection.js" || { echo "patch-cosmosdb-server: fix 3 (collection.js) did not apply" >&2; ok=false; }
$ok || exit 1
echo "cosmosdb-server patched"
