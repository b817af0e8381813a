// Package node wires ddc's parts into one node. Its subpackage repo owns the
// on-disk repository (config, identity key, piece store) and the file
// operations that work on it offline.
package node
