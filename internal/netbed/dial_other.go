//go:build !linux

package netbed

import (
	"context"
	"errors"
	"net"
)

// DialContext fails: network namespaces are a Linux feature, and so is
// the bed (Available says so before any bed is built).
func (h Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return nil, errors.New("netbed: network namespaces need Linux")
}
