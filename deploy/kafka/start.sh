#!/usr/bin/env bash
# Formats the KRaft storage once, bootstrapping the SCRAM admin user, then starts the broker.
set -euo pipefail
conf=/tmp/server.properties
bash /opt/oto/render-config.sh /opt/oto/server.properties "$conf"
# kafka-storage reads the credential as name=value pairs in [...]: these characters cannot be quoted.
case "$KAFKA_ADMIN_PASSWORD" in
  *[,\]\[\"=]*) echo "start.sh: KAFKA_ADMIN_PASSWORD may not contain , [ ] \" or =" >&2; exit 2 ;;
esac
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  /opt/kafka/bin/kafka-storage.sh format --config "$conf" --cluster-id "${KAFKA_CLUSTER_ID}" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=${KAFKA_ADMIN_PASSWORD}]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$conf"
