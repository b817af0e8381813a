package api

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces"
)

// A put in place goes over the copy socket too: the caller sends the file
// it opened and its path, and the node indexes the file's data pieces
// where they lie (Kubo's add --nocopy). Sending the descriptor, not just
// a path, shows the node that the caller can read the file: the node
// checks that the path names the file sent.

// servePutInPlace answers a put-in-place request.
func (s *Server) servePutInPlace(conn *net.UnixConn, req CopyRequest, f *os.File, in *node.In, send func(CopyStatus)) {
	fail := func(err error) { sendFailure(send, err) }
	if !filepath.IsAbs(req.PutInPlace) {
		fail(usagef("put in place: path %q is not absolute", req.PutInPlace))
		return
	}
	if err := samePath(req.PutInPlace, f); err != nil {
		fail(err)
		return
	}
	q, err := url.ParseQuery(req.PutOptions)
	var opt pieces.BuildOptions
	if err == nil {
		opt, err = DecodePutOptions(q)
	}
	if err != nil {
		fail(usagef("put in place: options: %v", err))
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() { // the caller hanging up ends the put
		io.Copy(io.Discard, conn)
		cancel()
	}()
	var read atomic.Int64
	opt.Progress = func(n uint64) { read.Store(int64(n)) }
	stop := reportEvery(send, func() CopyStatus { return CopyStatus{Bytes: read.Load()} })
	res, err := s.n.PutInPlaceIn(ctx, req.PutInPlace, f, opt, in)
	stop()
	if err != nil {
		fail(fmt.Errorf("put %s: %w", req.PutInPlace, err))
		return
	}
	send(CopyStatus{Done: true, Bytes: int64(res.Size), CID: res.Root.String(), Pieces: res.Pieces})
}

// samePath fails unless path names the file f is open on.
func samePath(path string, f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("put in place: %w", err)
	}
	at, err := os.Stat(path)
	if err != nil {
		return usagef("put in place: %v", err)
	}
	if !os.SameFile(fi, at) {
		return usagef("put in place: %s does not name the file sent", path)
	}
	return nil
}

// PutInPlace has the node put the file f, open on path, leaving its data
// pieces where they lie, over the repo's copy socket; progress, when not
// nil, is called with the bytes read so far.
func (c *Client) PutInPlace(ctx context.Context, path string, f *os.File, opt pieces.BuildOptions, progress func(int64)) (PutResult, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return PutResult{}, err
	}
	req := CopyRequest{PutInPlace: abs, PutOptions: EncodePutOptions(opt).Encode(), Bucket: c.bucket, Token: c.token}
	st, err := c.copyRequest(ctx, req, f, func(st CopyStatus) {
		if progress != nil {
			progress(st.Bytes)
		}
	}, nil)
	if err != nil {
		return PutResult{}, err
	}
	return PutResult{CID: st.CID, Size: uint64(st.Bytes), Pieces: st.Pieces}, nil
}
