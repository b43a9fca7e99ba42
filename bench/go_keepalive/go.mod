module k8stars/keepalivebench

go 1.24

require github.com/TarsCloud/TarsGo v1.4.6

require go.uber.org/automaxprocs v1.5.2 // indirect
