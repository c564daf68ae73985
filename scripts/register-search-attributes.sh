#!/bin/sh
# Creates the namespace if it is missing and registers the pipeline's search attributes (all Keyword), then exits.
# Idempotent: an attribute that already exists with the same type counts as registered; one with another type
# fails at once. docker-compose.yml's temporal-admin-tools job runs this very file.
#
# Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_NAMESPACE_RETENTION, DEPLOY_SEARCH_ATTRIBUTES
# (space-separated names, as in workflows/definitions.ts), TEMPORAL_CLI (default temporal).
set -eu
cli="${TEMPORAL_CLI:-temporal}"
address="$TEMPORAL_ADDRESS"
namespace="$TEMPORAL_NAMESPACE"
tries=0
until "$cli" operator cluster health --address "$address" > /dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then echo "Temporal at $address is not healthy" >&2; exit 1; fi
  sleep 2
done
if ! "$cli" operator namespace describe --namespace "$namespace" --address "$address" > /dev/null 2>&1; then
  "$cli" operator namespace create --namespace "$namespace" --retention "$TEMPORAL_NAMESPACE_RETENTION" --address "$address"
fi
for name in $DEPLOY_SEARCH_ATTRIBUTES; do
  tries=0
  # A new namespace takes a few seconds to reach every server cache: retry that, but not a type conflict.
  until output=$("$cli" operator search-attribute create --name "$name" --type Keyword --namespace "$namespace" --address "$address" 2>&1); do
    case "$output" in
      *"different type"*) echo "$output" >&2; exit 1 ;;
      *[Aa]"lready exists"*) break ;;
    esac
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then echo "$output" >&2; exit 1; fi
    sleep 2
  done
  echo "search attribute $name (Keyword) is registered in namespace $namespace"
done
