// Package gateway serves a node's files over HTTP for browsers, media
// players and curl: /ddc/file/<cid>, /ddc/buc/<bucket>/file/<cid> and
// /ddc/buc/<bucket>/path/<file-path> with ranges, conditional requests
// and immutable caching, so a <video> seeks at once and fetches only the
// pieces it plays; and the IPFS trustless-gateway responses under
// /ipfs/<cid>[/<path>] (a raw block or a CAR) for any DAG the node holds
// or can fetch: ddc's own through ddc's walk, the rest through
// boxo/gateway's handler over a blockstore that reads through the access
// rule (dag.go), so IPFS clients can fetch and verify them. It is
// read-only and has no API route, so it is safe to expose; its limits
// come from the repo's config.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/repo"
)

// Options are the gateway's address and limits.
type Options struct {
	Addr             string        // host:port
	MaxRequests      int           // served at once; more get 503
	MaxHeaderBytes   int           // of a request's headers
	RequestTimeout   time.Duration // of a whole request, body included
	RetrievalTimeout time.Duration // for the first bytes a response needs; past it, 504
	ReadAhead        int64         // bytes of chunks all requests together hold in flight
	Hosts            []string      // host names served besides localhost and IP addresses
	Logger           *slog.Logger  // access log and errors; none when nil
}

// OptionsFrom reads the options from the repo's config.
func OptionsFrom(c repo.GatewayConfig) Options {
	return Options{
		Addr:             c.Address,
		MaxRequests:      c.MaxRequests,
		MaxHeaderBytes:   c.MaxHeaderBytes,
		RequestTimeout:   time.Duration(c.RequestTimeout),
		RetrievalTimeout: time.Duration(c.RetrievalTimeout),
		ReadAhead:        int64(c.ReadAheadMiB) << 20,
		Hosts:            c.Hosts,
	}
}

// Server limits that are not in the config, each with why.
const (
	// readHeaderTimeout drops clients that open a connection and stall.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes kept-alive connections a player left.
	idleTimeout = 2 * time.Minute
	// drainTimeout is how long Close lets responses finish.
	drainTimeout = 5 * time.Second
	// responseWindow is the most chunks one response fetches ahead of
	// what its client took: a few seconds of a video at tens of Mbit/s.
	// The window grows to it only while the client waits for chunks, and
	// what a player leaves behind when it seeks is at most this.
	responseWindow = 16
)

// Server is a running gateway.
type Server struct {
	n      *node.Node
	opts   Options
	log    *slog.Logger
	srv    *http.Server
	ln     net.Listener
	slots  chan struct{}  // one per request being served
	budget *budget        // chunks in flight, across requests
	closes sync.WaitGroup // readers closing after their response
}

// New makes a gateway for n; Handler serves it, Listen starts one on
// opts.Addr.
func New(n *node.Node, opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{n: n, opts: opts, log: log, slots: make(chan struct{}, max(opts.MaxRequests, 1)),
		budget: &budget{Weighted: semaphore.NewWeighted(max(opts.ReadAhead, 1<<20))}}
	return s
}

// budget is the read-ahead all requests share, counting what is taken.
type budget struct {
	*semaphore.Weighted
	taken atomic.Int64
}

func (b *budget) Acquire(ctx context.Context, n int64) error {
	if err := b.Weighted.Acquire(ctx, n); err != nil {
		return err
	}
	b.taken.Add(n)
	return nil
}

func (b *budget) TryAcquire(n int64) bool {
	if !b.Weighted.TryAcquire(n) {
		return false
	}
	b.taken.Add(n)
	return true
}

func (b *budget) Release(n int64) {
	b.taken.Add(-n)
	b.Weighted.Release(n)
}

// ReadAheadTaken reports the bytes of the read-ahead budget that
// requests hold now.
func (s *Server) ReadAheadTaken() int64 { return s.budget.taken.Load() }

// Listen starts serving n's gateway on opts.Addr.
func Listen(n *node.Node, opts Options) (*Server, error) {
	s := New(n, opts)
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("gateway listen on %s: %w", opts.Addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	go s.srv.Serve(ln)
	return s, nil
}

// Active is how many requests the gateway is serving now.
func (s *Server) Active() int { return len(s.slots) }

// Addr is the address the gateway listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops taking requests, lets those running finish for a few
// seconds, cuts the rest and waits for their readers to close.
func (s *Server) Close() error {
	var err error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		if err = s.srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
			err = s.srv.Close()
		}
	}
	s.closes.Wait()
	return err
}

// Handler serves the gateway's routes with its limits and access log.
func (s *Server) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("/ddc/file/{cid}", s.file)
	m.HandleFunc("/ddc/file/{cid}/{path...}", s.filePath)
	m.HandleFunc("/ddc/buc/{bucket}/file/{cid}", s.bucketFile)
	m.HandleFunc("/ddc/buc/{bucket}/file/{cid}/{path...}", s.bucketFilePath)
	m.HandleFunc("/ddc/buc/{bucket}/path/{path...}", s.bucketPath)
	m.HandleFunc("/ddc/name/{scope}/{name...}", s.name) // names.go
	m.HandleFunc("/ipfs/{cid}", s.ipfs)
	m.HandleFunc("/ipfs/{cid}/{path...}", s.ipfs)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, "no such route: the gateway serves /ddc/file/<cid>, /ddc/buc/<bucket>/file/<cid>, /ddc/buc/<bucket>/path/<path>, /ddc/name/<bucket>/<name> and /ipfs/<cid>")
	})
	return s.limit(m)
}

// limit admits GET and HEAD up to MaxRequests at a time, bounds each by
// RequestTimeout, and logs it.
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		lw := &logWriter{ResponseWriter: w}
		defer func() { s.logAccess(r, lw, time.Since(start)) }()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			lw.Header().Set("Allow", "GET, HEAD")
			fail(lw, http.StatusMethodNotAllowed, fmt.Sprintf("method %s: the gateway is read-only (GET, HEAD)", r.Method))
			return
		}
		if !s.servesHost(r.Host) {
			fail(lw, http.StatusMisdirectedRequest, fmt.Sprintf("host %.100q: this gateway answers to localhost, IP addresses and the names in gateway.hosts", r.Host))
			return
		}
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		default:
			lw.Header().Set("Retry-After", "1")
			fail(lw, http.StatusServiceUnavailable, fmt.Sprintf("gateway busy: %d requests in progress (gateway.max_requests)", cap(s.slots)))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
		defer cancel()
		next.ServeHTTP(lw, r.WithContext(ctx))
	})
}

// servesHost reports whether host (a request's Host) is one the gateway
// answers to: localhost (and names under it, which resolve to loopback),
// an IP address, or a name of Options.Hosts. Any other name may be one an
// attacker's DNS resolves to the gateway's address (DNS rebinding), to
// read from a page of their own what the gateway serves.
func (s *Server) servesHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, h := range s.opts.Hosts {
		if strings.EqualFold(strings.TrimSuffix(h, "."), host) {
			return true
		}
	}
	return false
}

// logWriter records what a response sent, for the access log.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *logWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) logAccess(r *http.Request, w *logWriter, d time.Duration) {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	q := r.URL.Query()
	if q.Has("token") {
		q.Set("token", "REDACTED") // a grant is a secret
	}
	target := r.URL.Path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	s.n.GatewayResponse(status, w.bytes, d)
	s.log.Info("gateway", "method", r.Method, "path", target, "status", status, "bytes", w.bytes,
		"duration", d.Round(time.Microsecond), "remote", r.RemoteAddr, "range", r.Header.Get("Range"))
}

// fail answers with status and a short text saying what was wrong.
func fail(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	for _, k := range []string{"Cache-Control", "Content-Disposition", "Etag", "Content-Encoding", "Content-Range", "Content-Length"} {
		h.Del(k)
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(msg)+1))
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}
