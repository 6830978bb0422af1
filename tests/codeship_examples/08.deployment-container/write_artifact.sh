#!/bin/sh
mkdir -p /data
echo "Writing artifact"
date > /data/date
