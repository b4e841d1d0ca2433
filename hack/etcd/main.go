// Command etcd is upstream etcd's server main. Upstream's own main package lives in a module
// with replace directives, which `go install` refuses, so this calls the same entry point.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
