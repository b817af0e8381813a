//go:build !linux

package api

import (
	"errors"
	"net"
	"os"
)

// errNoCopySocket: the copy socket checks its caller's uid with Linux's
// SO_PEERCRED, so elsewhere gets stream through the HTTP API.
var errNoCopySocket = errors.New("the copy socket is served on Linux only; gets stream through the HTTP API")

func unixRights(*os.File) []byte { return nil }

func checkPeerUID(*net.UnixConn) error { return errNoCopySocket }

func readCopyRequest(*net.UnixConn) (CopyRequest, *os.File, error) {
	return CopyRequest{}, nil, errNoCopySocket
}
