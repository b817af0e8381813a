// Package leakcheck runs a package's tests under go.uber.org/goleak: the
// test binary fails when goroutines outlive the tests, with the stacks of
// those that did.
package leakcheck

import (
	"testing"

	"go.uber.org/goleak"
)

// Main runs m's tests and checks for leaked goroutines. goleveldb's memory
// pool drain, which runs for up to a second after DB.Close by design, is
// not a leak.
func Main(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}
