package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/exchange/offline"
	boxogw "github.com/ipfs/boxo/gateway"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces"
)

// DAGs that are not ddc's own (UnixFS files and directories, HAMT
// shards, DAG-CBOR and DAG-JSON documents, raw and identity blocks, CIDv0
// roots) are answered by boxo/gateway's trustless handler: it is what
// Kubo and Rainbow serve and what ipfs/gateway-conformance is written
// against, with UnixFS pathing, dag-scope, entity-bytes, dups/order
// negotiation and the spec's headers. It reads every block through
// dagStore, a read-only blockstore over one node getter per request, so
// the access rule decides each block it hands out, and its failures
// (refusals, timeouts) are answered by ddc's own error map.

// dagHandler is the one boxo handler of the process: it holds no state
// of a node or request (dagStore reads through the request's context).
var dagHandler = sync.OnceValues(newDAGHandler)

// newDAGHandler makes the boxo handler of the trustless responses,
// backed by dagStore. Its metrics go to a registry of its own: the
// gateway's figures are the node's (GatewayResponse).
func newDAGHandler() (http.Handler, error) {
	bs := blockstore.NewIdStore(dagStore{}) // identity CIDs hold their block
	reg := prometheus.NewRegistry()
	backend, err := boxogw.NewBlocksBackend(blockservice.New(bs, offline.Exchange(bs)), boxogw.WithPrometheusRegistry(reg))
	if err != nil {
		return nil, fmt.Errorf("trustless gateway backend: %w", err)
	}
	return boxogw.NewHandler(boxogw.Config{
		DeserializedResponses: false, // trustless only: raw blocks and CARs
		DisableHTMLErrors:     true,
		NoDNSLink:             true,
		MetricsRegistry:       reg,
	}, backend), nil
}

// dagReadKey is the context key of a request's *dagRead.
type dagReadKey struct{}

// dagRead is what one request's blocks are read with: the getter of its
// root (nil when the root is not a CID ddc hashes, such as an identity
// CID: then each block is read on its own), and the first failure.
type dagRead struct {
	n  *node.Node
	in *node.In
	g  pieces.Getter

	mu  sync.Mutex
	err error
}

// get returns the bytes of block c. A CIDv0 is read as the CIDv1 of its
// block, as the store holds it.
func (rd *dagRead) get(ctx context.Context, c cid.Cid) ([]byte, error) {
	v1 := pieces.V1(c)
	var (
		data []byte
		err  error
	)
	if rd.g != nil {
		data, err = rd.g.GetPiece(ctx, v1)
	} else {
		data, err = rd.n.Block(ctx, v1, rd.in)
	}
	if err != nil {
		rd.mu.Lock()
		if rd.err == nil {
			rd.err = err
		}
		rd.mu.Unlock()
		switch {
		case errors.Is(err, node.ErrNotPermitted):
			// Before not found, which a refusal to a stranger also is:
			// boxo answers a missing block of a path with 200 and the
			// blocks that prove it missing.
			return nil, boxogw.NewErrorStatusCode(fmt.Errorf("block %s: %w", c, err), http.StatusForbidden)
		case errors.Is(err, pieces.ErrNotFound):
			return nil, format.ErrNotFound{Cid: c}
		}
		return nil, fmt.Errorf("block %s: %w", c, err)
	}
	return data, nil
}

func (rd *dagRead) failure() error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.err
}

// dagStore is the read-only blockstore boxo's handler reads: each block
// through the request's dagRead, which its context carries.
type dagStore struct{}

var _ blockstore.Blockstore = dagStore{}

// errReadOnly is what the gateway's blockstore answers to writes.
var errReadOnly = errors.New("the gateway's blockstore is read-only")

func readOf(ctx context.Context, c cid.Cid) (*dagRead, error) {
	rd, ok := ctx.Value(dagReadKey{}).(*dagRead)
	if !ok {
		return nil, fmt.Errorf("block %s: asked outside a gateway request", c)
	}
	return rd, nil
}

func (dagStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	rd, err := readOf(ctx, c)
	if err != nil {
		return nil, err
	}
	data, err := rd.get(ctx, c)
	if err != nil {
		return nil, err
	}
	return blocks.NewBlockWithCid(data, c)
}

func (s dagStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	_, err := s.Get(ctx, c)
	if errors.As(err, new(format.ErrNotFound)) {
		return false, nil
	}
	return err == nil, err
}

func (s dagStore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	b, err := s.Get(ctx, c)
	if err != nil {
		return 0, err
	}
	return len(b.RawData()), nil
}

func (dagStore) DeleteBlock(context.Context, cid.Cid) error    { return errReadOnly }
func (dagStore) Put(context.Context, blocks.Block) error       { return errReadOnly }
func (dagStore) PutMany(context.Context, []blocks.Block) error { return errReadOnly }
func (dagStore) AllKeysChan(context.Context) (<-chan cid.Cid, error) {
	return nil, errReadOnly
}

// serveDAG answers the trustless request r for a DAG under root that
// ddc does not walk itself, through boxo's handler, reading in in.
func (s *Server) serveDAG(w http.ResponseWriter, r *http.Request, root cid.Cid, in *node.In) {
	dag, err := dagHandler()
	if err != nil {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	ctx, stop := s.retrieval(r.Context())
	defer stop()
	rd := &dagRead{n: s.n, in: in}
	dw := &dagWriter{ResponseWriter: w, s: s, ctx: ctx, rd: rd, in: in, stop: stop, what: r.URL.Path}
	serve := func() {
		dag.ServeHTTP(dw, r.WithContext(context.WithValue(ctx, dagReadKey{}, rd)))
		if !dw.wrote {
			dw.WriteHeader(http.StatusOK)
		}
		if dw.mute || dw.code >= 300 {
			dw.send()
			return
		}
		failed := rd.failure()
		if failed != nil && !dw.sent {
			// The failure came before the status went out (a block
			// refused on a path, before its first byte): it is the
			// answer, not a 200 cut short.
			dw.refuse(failed)
			return
		}
		dw.send()
		if failed != nil || dw.Header().Get("X-Stream-Error") != "" {
			// boxo ends a CAR cut short as if it were whole: the client
			// must see that it is not.
			s.log.Warn("car response cut short", "path", r.URL.Path, "err", failed, "stream", dw.Header().Get("X-Stream-Error"))
			panic(http.ErrAbortHandler)
		}
	}
	v1 := pieces.V1(root)
	if pieces.CheckCID(v1) != nil { // identity and other hashes ddc does not hold by: block by block
		serve()
		return
	}
	err = s.n.GetterIn(ctx, v1, in, func(g pieces.Getter) error {
		rd.g = g
		// The root first, through the access rule: boxo sends its status
		// and a CAR's header before it reads a block, so a refusal or a
		// timeout must be heard here to get its own status.
		data, err := g.GetPiece(ctx, v1)
		if err != nil {
			return err
		}
		if ddcCAR(r) != "" && s.serveDDCCAR(dw, r, ctx, root, data, g) {
			return nil
		}
		serve()
		return nil
	})
	if err != nil && !dw.wrote {
		s.failErr(w, ctx, err, root.String())
	}
}

// holdBytes is how much of a response dagWriter holds back before it
// sends the status: a CAR's header and the blocks of a path fit, so a
// block refused on the way still gets its own status rather than a 200
// cut short; a whole block of most DAGs does not, so streams start at
// once.
const holdBytes = 64 << 10

// dagWriter is the ResponseWriter boxo's handler writes to: it holds the
// status and the first holdBytes back, answers a failure of ddc's reads
// with ddc's own error (one line, no detail of what was refused), ends
// the retrieval timeout once the status is sent, and keeps content read
// with a grant out of caches.
type dagWriter struct {
	http.ResponseWriter
	s    *Server
	ctx  context.Context
	rd   *dagRead
	in   *node.In
	stop func() bool
	what string

	wrote bool         // boxo chose a status (code)
	code  int          // the status boxo chose
	sent  bool         // the status went to the client
	held  bytes.Buffer // the body before it did
	mute  bool         // the body is ddc's error, not boxo's
}

func (w *dagWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote, w.code = true, code
	if code >= 400 {
		if err := w.rd.failure(); err != nil {
			w.refuse(err)
			return
		}
		w.send()
	}
}

// reset takes back a status chosen and a body held, none of it sent,
// and puts the headers back as they were (header, a clone).
func (w *dagWriter) reset(header http.Header) {
	w.wrote, w.code, w.held = false, 0, bytes.Buffer{}
	h := w.Header()
	clear(h)
	maps.Copy(h, header)
}

// send sends the status and what was held back.
func (w *dagWriter) send() {
	if w.sent || w.mute {
		return
	}
	w.sent = true
	w.stop()
	h := w.Header()
	if w.in.Token != "" {
		h.Set("Cache-Control", "private, no-store")
	}
	if !slices.Contains(h.Values("Vary"), "Accept") { // boxo's CARs and blocks leave it out
		h.Add("Vary", "Accept")
	}
	h.Add("Vary", "Authorization")
	w.ResponseWriter.WriteHeader(w.code)
	if w.held.Len() > 0 {
		w.ResponseWriter.Write(w.held.Bytes()) // an error shows at the next Write
		w.held = bytes.Buffer{}
	}
}

// refuse answers with ddc's error for err in place of what boxo meant
// to send, dropping its headers (its stream error names what failed).
func (w *dagWriter) refuse(err error) {
	w.wrote, w.mute = true, true
	w.held = bytes.Buffer{}
	for _, k := range []string{"X-Stream-Error", "X-Ipfs-Roots", "X-Ipfs-Path", "Accept-Ranges"} {
		w.Header().Del(k)
	}
	w.s.failErr(w.ResponseWriter, w.ctx, err, w.what)
}

func (w *dagWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.mute:
		return len(b), nil
	case w.sent:
		return w.ResponseWriter.Write(b)
	}
	if w.held.Len()+len(b) < holdBytes {
		w.held.Write(b)
		return len(b), nil
	}
	w.send() // what is held, then b as it is, not copied in after it
	return w.ResponseWriter.Write(b)
}

// Flush sends what was written.
func (w *dagWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	w.send()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *dagWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
