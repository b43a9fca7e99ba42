module k8stars/tarspeer

go 1.24

require github.com/TarsCloud/TarsGo v1.4.6

require (
	github.com/TarsCloud/TarsGo/tars/tools/tars2go v1.2.4 // indirect
	go.uber.org/automaxprocs v1.5.2 // indirect
)

tool github.com/TarsCloud/TarsGo/tars/tools/tars2go
