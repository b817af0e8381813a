package repo

import "errors"

var (
	// ErrNotInitialized means the directory holds no repo.
	ErrNotInitialized = errors.New("repo not initialized")
	// ErrExists means Init found a repo already there.
	ErrExists = errors.New("repo already initialized")
	// ErrConfig means the config file does not parse or holds a bad value.
	ErrConfig = errors.New("bad repo config")
)
