module shipway.dev/localkube/pause

go 1.22
