#!/bin/sh
# With jet, the registry the push targets runs on the developer's machine, started by hand
# before `jet steps --push` (not by the pipeline); stop-registry.sh removes it.
docker run --detach --name shipway-fixture-registry --publish 5000:5000 registry:2
