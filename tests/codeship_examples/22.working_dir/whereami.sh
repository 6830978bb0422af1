#!/bin/sh
# Found only because the step runs in the service's working_dir.
echo "working in $(pwd)"
