// Command etcd is the etcd server, exactly as upstream's own main package (the root of
// go.etcd.io/etcd, which is not published for v3.7): it hands the arguments to etcdmain.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
