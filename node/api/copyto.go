package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node"
)

// The copy socket: a Unix socket in the repo over which the CLI hands the
// node an open output file (SCM_RIGHTS), and the node writes the file's
// bytes into it directly. Streaming them through the HTTP API instead cost
// a loopback copy on each side and a second process's writes, which took
// a large share of two cores at network speed. Only the repo's owner can
// reach the socket (the repo directory is 0700, and the peer's uid is
// checked), and the node writes only to what the caller opened itself.
const (
	// copyProgressEvery is how often a copy reports its progress.
	copyProgressEvery = 250 * time.Millisecond
	// maxCopyRequest caps the request message.
	maxCopyRequest = 16 << 10 // a token is up to 4 KiB
	// copyRequestTimeout bounds the wait for the request after connecting.
	copyRequestTimeout = 10 * time.Second
)

// CopyRequest asks the node to write length bytes (-1: to the end) of a
// file from offset into the file descriptor sent with it.
type CopyRequest struct {
	CID    string `json:"cid"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Pin    bool   `json:"pin"`              // pin the file once it was read whole
	Bucket string `json:"bucket,omitempty"` // read in this bucket
	Token  string `json:"token,omitempty"`  // with this grant for it
}

// CopyStatus is one line the node sends back: progress while it searches
// and copies, then one line with Done or an error.
type CopyStatus struct {
	Size      int64  `json:"size,omitempty"`   // the whole file, once its root is read
	Length    int64  `json:"length,omitempty"` // bytes this copy writes, likewise
	Bytes     int64  `json:"bytes"`            // written so far
	Holders   int    `json:"holders"`          // remote holders known
	Serving   int    `json:"serving"`          // remote holders that sent pieces
	Asked     int    `json:"asked"`            // peers asked for holders
	Searching bool   `json:"searching,omitempty"`
	Done      bool   `json:"done,omitempty"`
	Code      string `json:"code,omitempty"`
	Error     string `json:"error,omitempty"`
}

// ListenCopy serves copy requests on a Unix socket at path until Close.
func (s *Server) ListenCopy(path string) error {
	if errNoCopySocket != nil {
		return errNoCopySocket
	}
	os.Remove(path) // a socket left by a node that was killed
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("copy socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("copy socket %s: %w", path, err)
	}
	s.copyLn = ln
	s.wg.Go(func() {
		for {
			conn, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serveCopy(conn) })
		}
	})
	return nil
}

// serveCopy answers one copy request.
func (s *Server) serveCopy(conn *net.UnixConn) {
	defer conn.Close()
	var mu sync.Mutex
	enc := json.NewEncoder(conn)
	send := func(st CopyStatus) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(st)
	}
	fail := func(err error) {
		code, _ := classify(err)
		send(CopyStatus{Code: code, Error: err.Error()})
	}
	if err := checkPeerUID(conn); err != nil {
		fail(err)
		return
	}
	req, out, err := readCopyRequest(conn)
	if err != nil {
		fail(err)
		return
	}
	defer out.Close()
	c, err := cid.Parse(req.CID)
	if err != nil {
		fail(usagef("copy: CID %q: %v", req.CID, err))
		return
	}
	in, err := node.ParseIn(req.Bucket, req.Token)
	if err != nil {
		fail(err)
		return
	}
	// The caller hanging up (Ctrl-C) ends the copy.
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, conn)
		cancel()
	}()

	r := s.n.NewReaderIn(c, in)
	d := &download{root: c, r: r}
	id := s.track(d)
	defer s.untrack(id)
	stop := make(chan struct{})
	var reporter sync.WaitGroup
	reporter.Go(func() {
		t := time.NewTicker(copyProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				send(d.status())
			}
		}
	})
	err = copyFile(ctx, r, d, req, out)
	close(stop)
	reporter.Wait()
	st := d.status()
	if err != nil {
		code, _ := classify(err)
		st.Code, st.Error = code, err.Error()
		s.log.Info("copy failed", "cid", c, "err", err)
	} else {
		st.Done = true
	}
	send(st)
}

// copyFile opens r, writes the requested range into out and closes r.
func copyFile(ctx context.Context, r *node.Reader, d *download, req CopyRequest, out *os.File) error {
	if err := r.Open(ctx); err != nil {
		return errors.Join(err, r.Close())
	}
	length, err := r.SeekRange(req.Offset, req.Length)
	if err != nil {
		return errors.Join(err, r.Close())
	}
	d.setSize(r.Size(), length)
	_, err = r.CopyRange(countWriter{out, &d.bytes}, length)
	if err == nil && req.Pin && req.Offset == 0 && length == r.Size() {
		r.Pin()
	}
	return errors.Join(err, r.Close())
}

// CopyTo has the node write length bytes (-1: to the end) of k from
// offset into out, over the repo's copy socket; progress, when not nil,
// is called with each status the node sends. With pin, the node pins the
// file once it was read whole. It returns the last status.
func (c *Client) CopyTo(ctx context.Context, k cid.Cid, offset, length int64, pin bool, out *os.File, progress func(CopyStatus)) (CopyStatus, error) {
	var last CopyStatus
	if errNoCopySocket != nil {
		return last, errNoCopySocket
	}
	if c.sock == "" {
		return last, errors.New("copy: the node has no copy socket")
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: c.sock, Net: "unix"})
	if err != nil {
		return last, fmt.Errorf("copy socket %s: %w", c.sock, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req, _ := json.Marshal(CopyRequest{CID: k.String(), Offset: offset, Length: length, Pin: pin, Bucket: c.bucket, Token: c.token})
	if _, _, err := conn.WriteMsgUnix(req, unixRights(out), nil); err != nil {
		return last, fmt.Errorf("copy socket %s: send request: %w", c.sock, err)
	}
	dec := json.NewDecoder(conn)
	for {
		var st CopyStatus
		if err := dec.Decode(&st); err != nil {
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			return last, fmt.Errorf("node ended the copy after %d bytes: %w", last.Bytes, err)
		}
		last = st
		switch {
		case st.Error != "":
			return last, &Error{Code: st.Code, Message: st.Error}
		case st.Done:
			return last, nil
		}
		if progress != nil {
			progress(st)
		}
	}
}
