#!/bin/sh
# The app: answers on :8000 with what it read from the database service.
echo "app $(hostname) reading $DB_URL"
mkdir -p /www
while ! wget -qO /www/index.html "$DB_URL"; do sleep 0.2; done
echo "app got $(cat /www/index.html)"
exec httpd -f -p 8000 -h /www
