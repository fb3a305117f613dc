#!/usr/bin/env bash
# One-shot job: topics (with their DLQs), SCRAM users, ACLs. Safe to run again.
set -euo pipefail
sed "s/\${KAFKA_ADMIN_PASSWORD}/${KAFKA_ADMIN_PASSWORD}/" /opt/oto/admin.properties.template > /tmp/admin.properties
TOPICS="/opt/kafka/bin/kafka-topics.sh --bootstrap-server kafka:9092 --command-config /tmp/admin.properties"
for topic in oto.intake.events oto.casework.events oto.referrals.events oto.finance.events \
             oto.department.sociale-forhold-og-beskaeftigelse oto.department.boern-og-unge \
             oto.department.sundhed-og-omsorg oto.department.kultur-og-borgerservice; do
  $TOPICS --create --if-not-exists --topic "$topic" --partitions 3 --replication-factor 1
  $TOPICS --create --if-not-exists --topic "$topic.dlq" --partitions 1 --replication-factor 1
done
# Each relay's broker incarnation marker (see docs/operations.md, "When the broker loses events").
for topic in oto.intake.relay-marker oto.casework.relay-marker oto.referrals.relay-marker \
             oto.finance.relay-marker; do
  $TOPICS --create --if-not-exists --topic "$topic" --partitions 1 --replication-factor 1
done
CONFIGS="/opt/kafka/bin/kafka-configs.sh --bootstrap-server kafka:9092 --command-config /tmp/admin.properties"
while IFS='=' read -r user password; do
  [ -n "$user" ] || continue
  $CONFIGS --alter --entity-type users --entity-name "$user" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=${password}]"
done < /opt/oto/users.env
bash /opt/oto/acls.sh
echo "kafka setup done"
