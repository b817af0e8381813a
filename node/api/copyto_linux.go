package api

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// errNoCopySocket is nil: Linux has what the copy socket needs (SCM_RIGHTS
// and SO_PEERCRED).
var errNoCopySocket error

// unixRights is the control message that sends f's descriptor.
func unixRights(f *os.File) []byte { return unix.UnixRights(int(f.Fd())) }

// checkPeerUID refuses a caller running as another user than the node
// (root excepted), whatever the socket's file mode says.
func checkPeerUID(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("copy: peer credentials: %w", cerr)
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Getuid() {
		return usagef("copy: caller uid %d is not the node's user", cred.Uid)
	}
	return nil
}

// readCopyRequest reads the request and the one file descriptor sent
// with it.
func readCopyRequest(conn *net.UnixConn) (CopyRequest, *os.File, error) {
	var req CopyRequest
	conn.SetReadDeadline(time.Now().Add(copyRequestTimeout))
	defer conn.SetReadDeadline(time.Time{})
	buf := make([]byte, maxCopyRequest)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return req, nil, fmt.Errorf("copy: read request: %w", err)
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if len(fds) != 1 || flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return req, nil, usagef("copy: want one request of at most %d bytes with one file descriptor, got %d descriptors", maxCopyRequest, len(fds))
	}
	out := os.NewFile(uintptr(fds[0]), "copy output")
	if err := json.Unmarshal(buf[:n], &req); err != nil {
		out.Close()
		return req, nil, usagef("copy: bad request: %v", err)
	}
	return req, out, nil
}
