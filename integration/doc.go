// Package integration holds tests and benchmarks that run ddc as users do:
// the built ddc binary as separate processes on real repos, and (with the
// network) many real nodes on loopback. TestMain builds the binary once.
package integration
