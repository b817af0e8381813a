// Package repo owns a ddc repository on disk: the config file, the node's
// identity key and the piece store, and the file operations (put, open,
// stat, list) that work on it without a network.
//
// Layout of a repo directory:
//
//	config.json    settings, written atomically
//	identity.key   the libp2p private key (ed25519), mode 0600
//	store/         block files and their index (package pieces/store)
//
// A repo is created by Init and opened by Open; Open of a directory that was
// never initialised fails with ErrNotInitialized and writes nothing.
package repo
