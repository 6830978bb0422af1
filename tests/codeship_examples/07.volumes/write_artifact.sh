echo "`date`" > /artifacts/foo
