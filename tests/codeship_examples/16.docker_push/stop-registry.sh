#!/bin/sh
docker rm --force shipway-fixture-registry
