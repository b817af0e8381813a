package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
	// PutInPlace, when set, asks for a put instead: of the file sent,
	// whose absolute path it is, leaving its data pieces in place (see
	// Client.PutInPlace). PutOptions are the put's, as /put takes them.
	PutInPlace string `json:"put_in_place,omitempty"`
	PutOptions string `json:"put_options,omitempty"`
	// InPlace is the absolute path the descriptor's file will have (a
	// new, empty regular file the caller renames there once the node
	// reports Written): the node keeps the data pieces in place in it
	// instead of copying them into its blocks. For whole files, without
	// Pin.
	InPlace string `json:"in_place,omitempty"`
}

// CopyReply is what the caller sends back while the copy goes on: that it
// renamed an in-place output to its path (or could not), after Written.
type CopyReply struct {
	Renamed bool   `json:"renamed"`
	Error   string `json:"error,omitempty"`
}

// CopyStatus is one line the node sends back: progress while it searches
// and copies, then one line with Done or an error.
type CopyStatus struct {
	Size      int64 `json:"size,omitempty"`   // the whole file, once its root is read
	Length    int64 `json:"length,omitempty"` // bytes this copy writes, likewise
	Bytes     int64 `json:"bytes"`            // written so far
	Holders   int   `json:"holders"`          // remote holders known
	Serving   int   `json:"serving"`          // remote holders that sent pieces
	Asked     int   `json:"asked"`            // peers asked for holders
	Searching bool  `json:"searching,omitempty"`
	// Written says an in-place output is whole and durable: the caller
	// renames it to its path and replies (CopyReply).
	Written bool   `json:"written,omitempty"`
	Done    bool   `json:"done,omitempty"`
	CID     string `json:"cid,omitempty"`    // a put's root, with Done
	Pieces  int    `json:"pieces,omitempty"` // a put's pieces, with Done
	Code    string `json:"code,omitempty"`
	Error   string `json:"error,omitempty"`
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
	fail := func(err error) { sendFailure(send, err) }
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
	in, err := node.ParseIn(req.Bucket, req.Token)
	if err != nil {
		fail(err)
		return
	}
	if req.PutInPlace != "" {
		s.servePutInPlace(conn, req, out, in, send)
		return
	}
	c, err := cid.Parse(req.CID)
	if err != nil {
		fail(usagef("copy: CID %q: %v", req.CID, err))
		return
	}
	// The caller hanging up (Ctrl-C) ends the copy; what it sends before
	// is its reply to Written.
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	replies := make(chan CopyReply, 1)
	go func() {
		dec := json.NewDecoder(conn)
		for {
			var rep CopyReply
			if err := dec.Decode(&rep); err != nil {
				cancel()
				return
			}
			select {
			case replies <- rep:
			default:
			}
		}
	}()
	renamed := func() error {
		send(CopyStatus{Written: true})
		select {
		case rep := <-replies:
			if !rep.Renamed {
				return fmt.Errorf("output %s not renamed: %s", req.InPlace, rep.Error)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	r := s.n.NewReaderIn(c, in)
	d := &download{root: c, r: r}
	id := s.track(d)
	defer s.untrack(id)
	stop := reportEvery(send, d.status)
	err = copyFile(ctx, r, d, req, out, renamed)
	stop()
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

// sendFailure sends err as a copy's last status.
func sendFailure(send func(CopyStatus), err error) {
	code, _ := classify(err)
	send(CopyStatus{Code: code, Error: err.Error()})
}

// reportEvery sends status() every copyProgressEvery until stop, which
// returns once the last is sent.
func reportEvery(send func(CopyStatus), status func() CopyStatus) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(copyProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				send(status())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// copyFile opens r, writes the requested range into out and closes r.
// A whole file asked for in place is landed past the page cache, and its
// data pieces are kept where they lie once renamed says the caller moved
// the file to its path.
func copyFile(ctx context.Context, r *node.Reader, d *download, req CopyRequest, out *os.File, renamed func() error) error {
	if err := r.Open(ctx); err != nil {
		return errors.Join(err, r.Close())
	}
	length, err := r.SeekRange(req.Offset, req.Length)
	if err != nil {
		return errors.Join(err, r.Close())
	}
	d.setSize(r.Size(), length)
	whole := req.Offset == 0 && length == r.Size()
	if req.InPlace == "" || !whole || req.Pin {
		_, err = r.CopyRange(countWriter{out, &d.bytes}, length)
		if err == nil && req.Pin && whole {
			r.Pin()
		}
		return errors.Join(err, r.Close())
	}
	if !filepath.IsAbs(req.InPlace) {
		return errors.Join(usagef("copy: in-place path %q is not absolute", req.InPlace), r.Close())
	}
	l, err := node.NewLanding(out, req.InPlace)
	if err != nil {
		return errors.Join(err, r.Close())
	}
	r.InPlace()
	_, err = r.CopyRange(countPieces{countWriter{l, &d.bytes}, l}, length)
	if err == nil {
		err = l.Finish()
	}
	if err == nil {
		if err = renamed(); err == nil {
			r.KeepInPlace(req.InPlace, out, l)
		}
	}
	return errors.Join(err, r.Close())
}

// countPieces is countWriter for a PieceWriter.
type countPieces struct {
	countWriter
	l *node.Landing
}

func (w countPieces) WritePiece(c cid.Cid, off int64, p []byte) (int, error) {
	n, err := w.l.WritePiece(c, off, p)
	w.n.Add(int64(n))
	return n, err
}

// CopyOptions say what CopyTo copies.
type CopyOptions struct {
	Offset, Length int64 // the range; Length -1: to the end
	Pin            bool  // pin the file once it was read whole
	// InPlace, when not empty, is the absolute path out will have: the
	// node keeps the file's data pieces in place in it (see
	// CopyRequest.InPlace). Once out is whole and durable, CopyTo calls
	// Written, which must rename it there; the node indexes the pieces
	// only after it succeeded.
	InPlace string
	Written func() error
}

// CopyTo has the node write the bytes opt says of k into out, over the
// repo's copy socket; progress, when not nil, is called with each status
// the node sends. It returns the last status.
func (c *Client) CopyTo(ctx context.Context, k cid.Cid, opt CopyOptions, out *os.File, progress func(CopyStatus)) (CopyStatus, error) {
	req := CopyRequest{CID: k.String(), Offset: opt.Offset, Length: opt.Length, Pin: opt.Pin, Bucket: c.bucket, Token: c.token, InPlace: opt.InPlace}
	return c.copyRequest(ctx, req, out, progress, opt.Written)
}

// copyRequest sends req with f over the copy socket and follows the
// node's statuses to the last; written answers Written.
func (c *Client) copyRequest(ctx context.Context, req CopyRequest, f *os.File, progress func(CopyStatus), written func() error) (CopyStatus, error) {
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
	msg, _ := json.Marshal(req)
	if _, _, err := conn.WriteMsgUnix(msg, unixRights(f), nil); err != nil {
		return last, fmt.Errorf("copy socket %s: send request: %w", c.sock, err)
	}
	dec := json.NewDecoder(conn)
	enc := json.NewEncoder(conn)
	for {
		var st CopyStatus
		if err := dec.Decode(&st); err != nil {
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			return last, fmt.Errorf("node ended the copy after %d bytes: %w", last.Bytes, err)
		}
		switch {
		case st.Error != "":
			return st, &Error{Code: st.Code, Message: st.Error}
		case st.Done:
			return st, nil
		case st.Written:
			if written == nil {
				return last, errors.New("copy: the node reported an in-place output written, which was not asked for")
			}
			err := written()
			rep := CopyReply{Renamed: err == nil}
			if err != nil {
				rep.Error = err.Error()
			}
			if werr := enc.Encode(rep); err == nil && werr != nil {
				err = fmt.Errorf("copy socket %s: %w", c.sock, werr)
			}
			if err != nil {
				return last, err
			}
			continue
		}
		last = st
		if progress != nil {
			progress(st)
		}
	}
}
