package api

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCopyRequestParsing: the copy socket takes exactly one bounded JSON
// request with exactly one descriptor, and says what was wrong otherwise.
func TestCopyRequestParsing(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f1, _ := os.Create(filepath.Join(dir, "out1"))
	f2, _ := os.Create(filepath.Join(dir, "out2"))
	defer f1.Close()
	defer f2.Close()
	send := func(msg string, fds ...int) (CopyRequest, *os.File, error) {
		t.Helper()
		c, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		if _, _, err := c.WriteMsgUnix([]byte(msg), oob, nil); err != nil {
			t.Fatal(err)
		}
		s, err := ln.AcceptUnix()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := checkPeerUID(s); err != nil {
			t.Fatalf("own uid refused: %v", err)
		}
		return readCopyRequest(s)
	}
	good := `{"cid":"bafkqaaa","offset":1,"length":-1,"pin":true}`
	if _, _, err := send(good); !errors.Is(err, ErrUsage) {
		t.Errorf("no descriptor: %v, want a usage error", err)
	}
	if _, _, err := send(good, int(f1.Fd()), int(f2.Fd())); !errors.Is(err, ErrUsage) {
		t.Errorf("two descriptors: %v, want a usage error", err)
	}
	if _, _, err := send("{not json", int(f1.Fd())); !errors.Is(err, ErrUsage) {
		t.Errorf("bad JSON: %v, want a usage error", err)
	}
	req, out, err := send(good, int(f1.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if req.CID != "bafkqaaa" || req.Offset != 1 || req.Length != -1 || !req.Pin {
		t.Fatalf("request %+v", req)
	}
	if _, err := out.Write([]byte("through the descriptor")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f1.Name()); string(b) != "through the descriptor" {
		t.Fatalf("the descriptor received writes to %q, not the sender's file", b)
	}
}
