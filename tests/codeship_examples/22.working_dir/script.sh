#! /bin/sh

set -e

echo "foo"
