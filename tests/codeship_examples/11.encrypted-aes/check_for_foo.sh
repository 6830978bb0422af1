#!/bin/sh

printenv | grep FOO
