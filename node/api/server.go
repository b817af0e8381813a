package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

// Server limits, each with why.
const (
	// readHeaderTimeout drops clients that open a connection and stall.
	readHeaderTimeout = 10 * time.Second
	// maxHeaderBytes caps request headers; no route needs more.
	maxHeaderBytes = 64 << 10
	// providersTimeout bounds a providers lookup unless the client says.
	providersTimeout = 30 * time.Second
	// DrainTimeout is how long Close lets running requests and copies
	// finish before it cuts them: long enough for a put or a small get,
	// short enough that a stopping node stops.
	DrainTimeout = 5 * time.Second
)

// Server serves the API of one node.
type Server struct {
	n   *node.Node
	log *slog.Logger
	srv *http.Server
	ln  net.Listener

	copyLn *net.UnixListener // the copy socket, once ListenCopy ran

	ctx    context.Context // ends when Close's drain ends: requests and copies stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // the copy socket's goroutines

	drain    time.Duration // DrainTimeout; tests shorten it
	hmu      sync.Mutex
	closing  bool           // no handler starts any more
	handlers sync.WaitGroup // HTTP handlers running

	gateway atomic.Pointer[string] // the gateway's address, for /id

	stopReq  chan struct{} // closed by POST /node/stop
	secret   string        // asked of every request when set
	stopOnce sync.Once

	mu        sync.Mutex
	downloads map[uint64]*download
	nextID    uint64
}

// download is a cat or copy in progress, for the progress of the CLI
// that asked.
type download struct {
	root   cid.Cid
	size   atomic.Int64 // 0 until the root is read
	length atomic.Int64
	bytes  atomic.Int64
	r      *node.Reader
}

func (d *download) setSize(size, length int64) { d.size.Store(size); d.length.Store(length) }

// status reports the download as a copy does.
func (d *download) status() CopyStatus {
	known, serving := d.r.Holders()
	asked, searching := d.r.Search()
	return CopyStatus{Size: d.size.Load(), Length: d.length.Load(), Bytes: d.bytes.Load(),
		Holders: known, Serving: serving, Asked: asked, Searching: searching}
}

// Listen starts serving n's API on addr (host:port, loopback only).
func Listen(n *node.Node, addr string, log *slog.Logger) (*Server, error) {
	return ListenWithSecret(n, addr, "", log)
}

// ListenWithSecret is Listen for an API that asks every request for
// secret, as a Bearer token or a basic-auth password; it must be set for
// an address beyond loopback.
func ListenWithSecret(n *node.Node, addr, secret string, log *slog.Logger) (*Server, error) {
	if secret == "" && !repo.Loopback(addr) {
		return nil, fmt.Errorf("api on %s: an API beyond loopback needs the repo's API secret", addr)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api listen on %s: %w", addr, err)
	}
	s := &Server{n: n, log: log, ln: ln, drain: DrainTimeout, downloads: make(map[uint64]*download), stopReq: make(chan struct{}), secret: secret}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           s.guard(s.routes()),
		ReadHeaderTimeout: readHeaderTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	go s.srv.Serve(ln)
	return s, nil
}

// SetGateway records the node's gateway address for GET /id to report.
func (s *Server) SetGateway(addr string) { s.gateway.Store(&addr) }

// Addr is the address the API listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the API: it takes no new requests or copies, lets those
// running finish for up to DrainTimeout, then cuts the rest and returns
// once every handler has returned, so the node can close its store.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.drain)
	defer cancel()
	var errs []error
	if s.copyLn != nil {
		errs = append(errs, s.copyLn.Close()) // removes the socket file
	}
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		errs = append(errs, err)
	}
	copies := make(chan struct{})
	go func() { s.wg.Wait(); close(copies) }()
	select {
	case <-copies:
	case <-ctx.Done():
	}
	s.cancel() // past the drain: what still runs is cut
	errs = append(errs, s.srv.Close())
	s.hmu.Lock()
	s.closing = true
	s.hmu.Unlock()
	s.handlers.Wait()
	<-copies
	return errors.Join(errs...)
}

// enter counts a handler in, unless Close is past its drain.
func (s *Server) enter() bool {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.closing {
		return false
	}
	s.handlers.Add(1)
	return true
}

// fail writes err as a JSON error with its status.
func (s *Server) fail(w http.ResponseWriter, err error) {
	code, status := classify(err)
	if status >= 500 {
		s.log.Warn("api request failed", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Error{Code: code, Message: err.Error()})
}

func (s *Server) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func pathCID(r *http.Request) (cid.Cid, error) {
	return pieces.ParseCID(r.PathValue("cid"))
}

// ID is what GET /id returns.
type ID struct {
	PeerID          string            `json:"peer_id"`
	Cluster         string            `json:"cluster"`
	Addrs           []string          `json:"addrs"`
	Peers           int               `json:"peers"` // connected now
	DHT             []dht.TableStatus `json:"dht"`   // the LAN DHT, then the WAN DHT
	Announced       uint64            `json:"announced"`
	AnnouncePending int               `json:"announce_pending"`
	Fetched         uint64            `json:"fetched_bytes"` // pieces fetched from other nodes since start
	Gateway         string            `json:"gateway,omitempty"`
	// NamesRepublished counts the name records put in the DHT again
	// since start (names.go).
	NamesRepublished uint64 `json:"names_republished"`
}

func (s *Server) id(w http.ResponseWriter, _ *http.Request) {
	done, pending := s.n.Announcing()
	out := ID{PeerID: s.n.ID().String(), Cluster: s.n.Cluster(), Addrs: []string{}, Peers: len(s.n.Peers()),
		DHT: s.n.DHTStatus(), Announced: done, AnnouncePending: pending, Fetched: s.n.Fetched(),
		NamesRepublished: s.n.NamesRepublished()}
	if g := s.gateway.Load(); g != nil {
		out.Gateway = *g
	}
	for _, a := range s.n.Addrs() {
		out.Addrs = append(out.Addrs, a.String())
	}
	s.reply(w, out)
}

// Peer is a peer as /peers and /providers list it.
type Peer struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

func toPeer(ai peer.AddrInfo) Peer {
	p := Peer{ID: ai.ID.String(), Addrs: []string{}}
	for _, a := range ai.Addrs {
		p.Addrs = append(p.Addrs, a.String())
	}
	return p
}

func (s *Server) peers(w http.ResponseWriter, _ *http.Request) {
	out := []Peer{}
	for _, ai := range s.n.Peers() {
		out = append(out, toPeer(ai))
	}
	s.reply(w, out)
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	addr := r.URL.Query().Get("addr")
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		s.fail(w, usagef("connect %q: %v (want a multiaddr ending in /p2p/<peer ID>)", addr, err))
		return
	}
	if err := s.n.Connect(r.Context(), *ai); err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, Peer{ID: ai.ID.String(), Addrs: []string{addr}})
}

func (s *Server) providers(w http.ResponseWriter, r *http.Request) {
	c, err := pathCID(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	timeout := providersTimeout
	if t := r.URL.Query().Get("timeout"); t != "" {
		if timeout, err = time.ParseDuration(t); err != nil || timeout <= 0 {
			s.fail(w, usagef("timeout %q: want a positive duration such as 10s", t))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	for ai := range s.n.Providers(ctx, c) {
		if enc.Encode(toPeer(ai)) != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
	}
}

// PutResult is what POST /put returns.
type PutResult struct {
	CID    string `json:"cid"`
	Size   uint64 `json:"size"`
	Pieces int    `json:"pieces"`
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	opt, in, ok := s.putRequest(w, r)
	if !ok {
		return
	}
	if r.ContentLength > 0 { // a put that cannot fit fails before it evicts anything
		if err := s.n.Repo().Store.Fits(r.Context(), uint64(r.ContentLength)); err != nil {
			s.fail(w, fmt.Errorf("put: %w", err))
			return
		}
	}
	res, err := s.n.PutIn(r.Context(), r.Body, opt, in)
	if err != nil {
		s.fail(w, fmt.Errorf("put: %w", err))
		return
	}
	s.reply(w, PutResult{CID: res.Root.String(), Size: res.Size, Pieces: res.Pieces})
}

// cat streams a file, or a range of it, from the store and the network.
// The status and Content-Length are sent once the root is found; an error
// after that is sent in the X-Ddc-Error trailer, and the client treats a
// body without the X-Ddc-Done trailer as cut short.
func (s *Server) cat(w http.ResponseWriter, r *http.Request) {
	c, err := pathCID(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	q := r.URL.Query()
	offset, err := queryInt(q.Get("offset"), 0)
	if err != nil {
		s.fail(w, err)
		return
	}
	length, err := queryInt(q.Get("length"), -1)
	if err != nil {
		s.fail(w, err)
		return
	}
	pin := q.Get("pin") == "true"
	if pin && r.Method != http.MethodPost {
		s.fail(w, usagef("pin=true changes the node's state: send it with POST"))
		return
	}
	in, err := requestIn(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	fr, err := s.n.OpenIn(r.Context(), c, in)
	if err != nil {
		s.fail(w, err)
		return
	}
	d := &download{root: c, r: fr}
	id := s.track(d)
	defer s.untrack(id)
	if length, err = fr.SeekRange(offset, length); err != nil {
		fr.Close()
		s.fail(w, err)
		return
	}
	d.setSize(fr.Size(), length)
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	// No Content-Length: the body is chunked so that the trailers can say
	// how it ended.
	h.Set("X-Ddc-Length", strconv.FormatInt(length, 10))
	h.Set("X-Ddc-Size", strconv.FormatInt(fr.Size(), 10))
	h.Set("X-Ddc-Download", strconv.FormatUint(id, 10))
	h.Set("Trailer", "X-Ddc-Error, X-Ddc-Error-Code, X-Ddc-Done, X-Ddc-Serving")
	w.WriteHeader(http.StatusOK)
	_, err = fr.CopyRange(countWriter{w, &d.bytes}, length)
	if err == nil && pin && offset == 0 && length == fr.Size() {
		fr.Pin()
	}
	err = errors.Join(err, fr.Close())
	if err != nil {
		code, _ := classify(err)
		h.Set("X-Ddc-Error", err.Error())
		h.Set("X-Ddc-Error-Code", code)
		s.log.Info("cat failed", "cid", c, "err", err)
		return
	}
	h.Set("X-Ddc-Done", "true")
	_, serving := fr.Holders()
	h.Set("X-Ddc-Serving", strconv.Itoa(serving))
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func queryInt(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < -1 {
		return 0, usagef("%q is not a byte count", s)
	}
	return n, nil
}

func (s *Server) track(d *download) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.downloads[s.nextID] = d
	return s.nextID
}

func (s *Server) untrack(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.downloads, id)
}

// Download is a download in progress as /downloads lists it.
type Download struct {
	ID  uint64 `json:"id"`
	CID string `json:"cid"`
	CopyStatus
}

func (s *Server) listDownloads(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := make([]Download, 0, len(s.downloads))
	for id, d := range s.downloads {
		out = append(out, Download{ID: id, CID: d.root.String(), CopyStatus: d.status()})
	}
	s.mu.Unlock()
	s.reply(w, out)
}

// Stat is what GET /stat returns.
type Stat struct {
	CID         string       `json:"cid"`
	Size        uint64       `json:"size"`
	Pieces      int          `json:"pieces"`
	Descriptors int          `json:"descriptors"`
	Depth       int          `json:"depth"`
	Inline      int          `json:"inline"`
	Tags        []pieces.Tag `json:"tags"`
}

// cidIn reads the CID in the path and the bucket and grant of the
// request, or answers with what is wrong.
func (s *Server) cidIn(w http.ResponseWriter, r *http.Request) (cid.Cid, *node.In, bool) {
	c, err := pathCID(r)
	if err == nil {
		var in *node.In
		if in, err = requestIn(r); err == nil {
			return c, in, true
		}
	}
	s.fail(w, err)
	return cid.Undef, nil, false
}

func (s *Server) stat(w http.ResponseWriter, r *http.Request) {
	c, in, ok := s.cidIn(w, r)
	if !ok {
		return
	}
	st, err := s.n.StatIn(r.Context(), c, in)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, Stat{CID: st.CID.String(), Size: st.Size, Pieces: st.Pieces, Descriptors: st.Descriptors, Depth: st.Depth, Inline: st.Inline, Tags: st.Tags})
}

// File is a pinned file as GET /ls lists it.
type File struct {
	CID    string       `json:"cid"`
	Size   uint64       `json:"size"`
	Tags   []pieces.Tag `json:"tags"`
	Pinned time.Time    `json:"pinned"`
	Error  string       `json:"error,omitempty"`
}

func (s *Server) ls(w http.ResponseWriter, r *http.Request) {
	in, err := requestIn(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := []File{}
	err = s.n.FilesIn(r.Context(), in, func(fi repo.FileInfo) error {
		f := File{CID: fi.CID.String(), Size: fi.Size, Tags: fi.Tags, Pinned: fi.Pinned}
		if fi.Err != nil {
			f.Error = fi.Err.Error()
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, out)
}
