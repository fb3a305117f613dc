#!/usr/bin/env bash
# Formats the KRaft storage once, bootstrapping the SCRAM admin user, then starts the broker.
set -euo pipefail
conf=/tmp/server.properties
sed "s/\${KAFKA_ADMIN_PASSWORD}/${KAFKA_ADMIN_PASSWORD}/" /opt/oto/server.properties > "$conf"
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  /opt/kafka/bin/kafka-storage.sh format --config "$conf" --cluster-id "${KAFKA_CLUSTER_ID}" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=${KAFKA_ADMIN_PASSWORD}]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$conf"
