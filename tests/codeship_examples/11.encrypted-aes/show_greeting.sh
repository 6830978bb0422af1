#!/bin/sh
# Prints the variable that reached the step from the encrypted file (not the token).
env | grep '^GREETING='
