#!/usr/bin/env bash
# render-config.sh TEMPLATE OUTPUT: fill ${KAFKA_ADMIN_PASSWORD}, ${KAFKA_CONTROLLER_PASSWORD} and
# ${KAFKA_EXTERNAL_ADVERTISED} from the environment. Plain bash string replacement, so "/", "&" and
# other characters sed would treat specially are copied as they are; '\' and '"' are escaped because
# the passwords sit inside JAAS quotes. The output is readable by its owner only.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true  # bash 5.2: "&" in a replacement must stay "&"
template=$1 output=$2
jaas_quote() { local value=${1//\\/\\\\}; printf '%s' "${value//\"/\\\"}"; }
text=$(<"$template")
for name in KAFKA_ADMIN_PASSWORD KAFKA_CONTROLLER_PASSWORD; do
  if [[ $text == *"\${$name}"* ]]; then
    [ -n "${!name:-}" ] || { echo "render-config: $name is not set" >&2; exit 2; }
    value=$(jaas_quote "${!name}")
    text=${text//"\${$name}"/"$value"}
  fi
done
external=${KAFKA_EXTERNAL_ADVERTISED:-localhost:9094}
text=${text//'${KAFKA_EXTERNAL_ADVERTISED}'/"$external"}
umask 077
printf '%s\n' "$text" > "$output"
