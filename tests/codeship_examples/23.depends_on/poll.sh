#!/bin/sh
# Asks the web service once a second, for up to 15 seconds.
for attempt in $(seq 15); do
  if curl -fsS -o /dev/null http://web:8080/; then
    echo "web answered after $attempt attempt(s)"
    exit 0
  fi
  sleep 1
done
echo "web never answered" >&2
exit 1
