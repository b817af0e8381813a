package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/pieces"
)

// immutable is the caching of content addressed by its CID: it never
// changes, so a year's caching (the longest RFC 9111 caches honour) with
// no revalidation.
const immutable = "max-age=29030400, immutable"

// mutableCache is the caching of a path, which a newer put may move:
// short, and revalidated by ETag (the CID it named).
const mutableCache = "max-age=60"

// errRetrieval is the cause of a request cancelled because the first
// bytes it needs did not arrive within the retrieval timeout.
var errRetrieval = errors.New("retrieval timeout")

// file serves GET|HEAD /ddc/file/<cid>: a file in no bucket or a public
// one, or, with a grant, in the grant's bucket.
func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	in, ok := s.guestIn(w, r, "")
	if !ok {
		return
	}
	c, err := pieces.ParseCID(r.PathValue("cid"))
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.serveFile(w, r, c, in, "", immutable)
}

// bucketFile serves GET|HEAD /ddc/buc/<bucket>/file/<cid>.
func (s *Server) bucketFile(w http.ResponseWriter, r *http.Request) {
	in, ok := s.guestIn(w, r, r.PathValue("bucket"))
	if !ok {
		return
	}
	c, err := pieces.ParseCID(r.PathValue("cid"))
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.serveFile(w, r, c, in, "", immutable)
}

// bucketPath serves GET|HEAD /ddc/buc/<bucket>/path/<file-path>: the
// newest file of the bucket with that file-path tag.
func (s *Server) bucketPath(w http.ResponseWriter, r *http.Request) {
	in, ok := s.guestIn(w, r, r.PathValue("bucket"))
	if !ok {
		return
	}
	p := "/" + r.PathValue("path")
	what := fmt.Sprintf("path %q", p)
	ctx, stop := s.retrieval(r.Context())
	c, err := s.n.Newest(ctx, in, p)
	stop()
	if errors.Is(err, pieces.ErrNotFound) && ctx.Err() == nil {
		fail(w, http.StatusNotFound, what+": no file has it")
		return
	}
	if err != nil {
		s.failErr(w, ctx, err, what)
		return
	}
	s.serveFile(w, r, c, in, path.Base(p), mutableCache)
}

// guestIn reads what a request reads in: the bucket the route names
// (bucket, its text; empty when it names none) and the grant the client
// presents, as ?token= or Authorization: Bearer; never a cookie, which a
// page of other content on this origin could make the browser send. The
// node's own keys never act for the client: a read is a guest's.
func (s *Server) guestIn(w http.ResponseWriter, r *http.Request, bucket string) (*node.In, bool) {
	token := r.URL.Query().Get("token")
	if a := r.Header.Get("Authorization"); a != "" && token == "" {
		scheme, t, ok := strings.Cut(a, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			fail(w, http.StatusBadRequest, "Authorization: want \"Bearer <grant token>\"")
			return nil, false
		}
		token = strings.TrimSpace(t)
	}
	in, err := s.n.GuestIn(bucket, token)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return in, true
}

// caching sets the response's caching for a read in in: content read
// with a grant is for its client alone and is not kept (no-store: not in
// a shared cache, nor on the client's disk once the grant has expired);
// anything else is public, which the access rule allows only for content
// in no bucket or in a public bucket.
func caching(h http.Header, in *node.In, cache string) {
	h.Add("Vary", "Authorization")
	if in.Token != "" {
		h.Set("Cache-Control", "private, no-store")
		return
	}
	h.Set("Cache-Control", "public, "+cache)
}

// retrieval is ctx cancelled with errRetrieval once the retrieval timeout
// passes, until stop is called.
func (s *Server) retrieval(ctx context.Context) (context.Context, func() bool) {
	ctx, cancel := context.WithCancelCause(ctx)
	t := time.AfterFunc(s.opts.RetrievalTimeout, func() { cancel(errRetrieval) })
	return ctx, t.Stop
}

// serveFile answers with the file c (read in bucket in when not nil), as
// http.ServeContent does ranges and conditions, streaming it as its
// pieces arrive.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, c cid.Cid, in *node.In, name, cache string) {
	h := w.Header()
	etag := `"` + c.String() + `"`
	h.Set("Etag", etag)
	caching(h, in, cache)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", sandbox)
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified) // the CID is the content: nothing to fetch
		return
	}
	ctx, stop := s.retrieval(r.Context())
	defer stop()
	rd := s.n.NewReaderIn(c, in)
	rd.Share() // overlapping ranges of a player, and other clients, fetch each piece once
	if err := rd.Open(ctx); err != nil {
		rd.Close()
		if errors.Is(err, pieces.ErrIsDir) {
			stop()
			s.serveEntry(w, r, c, "", in, cache)
			return
		}
		s.failErr(w, ctx, err, c.String())
		return
	}
	f := &guardedFile{f: rd.File}
	defer s.closes.Go(func() { f.close(rd) }) // commits what was fetched: the response needs not wait
	f.f.Budget = s.budget
	f.f.ReadAhead = min(f.f.ReadAhead, responseWindow)
	root := f.f.Root()
	if n := r.URL.Query().Get("filename"); n != "" {
		name = n
	} else if p, ok := root.Value(pieces.TagFilePath); ok && name == "" {
		name = path.Base(p)
	}
	ct, err := contentType(f.f, root, name)
	if err != nil {
		s.failErr(w, ctx, err, c.String())
		return
	}
	h.Set("Content-Type", ct)
	if d := disposition(r, name); d != "" {
		h.Set("Content-Disposition", d)
	}
	dw := &deferredWriter{ResponseWriter: w}
	http.ServeContent(dw, r, "", time.Time{}, f)
	if err := f.failure(); err != nil && !errors.Is(err, io.EOF) {
		if !dw.sent {
			s.failErr(w, ctx, err, c.String())
			return
		}
		if r.Context().Err() != nil {
			// The client went away (a player seeking elsewhere): routine.
			s.log.Debug("gateway response ended by its client", "cid", c)
		} else {
			s.log.Warn("gateway response cut short", "cid", c, "err", err)
		}
		panic(http.ErrAbortHandler) // the status is out: cutting the connection is how to say the body is incomplete
	}
	dw.flush()
}

// sandbox is the Content-Security-Policy of every response: content
// rendered inline (HTML, SVG, a PDF) runs in an opaque origin of its own,
// so its scripts can read nothing else this gateway serves, nor ask
// anything of it with the user's credentials; they still run, and forms
// and popups work, as a page put into ddc expects.
const sandbox = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"

// failErr answers with the status that err calls for; what names the CID
// or path the request was for. A refusal says the same few words
// whatever its cause and wherever it came from (this node's store, or a
// holder's answer), and the body of an error never carries the detail,
// which may name holders and buckets: the node's log has it.
func (s *Server) failErr(w http.ResponseWriter, ctx context.Context, err error, what string) {
	class := api.Classify(err)
	switch {
	case class == api.ClassDenied || class == api.ClassForbidden:
		s.log.Info("gateway refused", "what", what, "err", err)
		fail(w, http.StatusForbidden, node.ErrNotPermitted.Error()) // not even what was asked: it may be a path
		return
	case errors.Is(context.Cause(ctx), errRetrieval):
		s.log.Info("gateway retrieval timed out", "what", what, "err", err)
		fail(w, http.StatusGatewayTimeout, fmt.Sprintf("%s: not retrieved from the cluster within %s", what, s.opts.RetrievalTimeout))
		return
	case class == api.ClassUsage:
		fail(w, http.StatusBadRequest, err.Error()) // about what the client sent
		return
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		s.log.Debug("gateway request ended by its client", "what", what)
	} else {
		s.log.Warn("gateway request failed", "what", what, "err", err)
	}
	switch {
	case errors.Is(err, pieces.ErrCorrupt): // what holders sent failed its hash
		fail(w, http.StatusBadGateway, fmt.Sprintf("%s: the holders sent bytes that fail their hash", what))
	case class == api.ClassNotFound:
		fail(w, http.StatusGatewayTimeout, fmt.Sprintf("%s: not found in the cluster", what))
	case class == api.ClassCorrupt:
		fail(w, http.StatusBadGateway, fmt.Sprintf("%s: malformed data from the holders", what))
	case class == api.ClassCanceled:
		fail(w, http.StatusServiceUnavailable, fmt.Sprintf("%s: the request was cut short", what))
	default:
		fail(w, http.StatusInternalServerError, fmt.Sprintf("%s: the gateway failed; its log says why", what))
	}
}

// noneMatch reports whether an If-None-Match header names etag.
func noneMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// contentType is the file's type: its content-type tag, else what its
// first bytes say when that is specific, else what its name's extension
// says, else what its first bytes say.
func contentType(f *pieces.File, root *pieces.Piece, name string) (string, error) {
	if t, ok := root.Value(pieces.TagContentType); ok {
		if _, _, err := mime.ParseMediaType(t); err == nil {
			return t, nil
		}
	}
	head := root.Data
	if len(head) < 512 && int64(len(head)) < f.Size() {
		head = make([]byte, min(512, f.Size()))
		if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
	}
	sniffed := http.DetectContentType(head)
	if sniffed != "application/octet-stream" && !strings.HasPrefix(sniffed, "text/plain") {
		return sniffed, nil
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t, nil
	}
	return sniffed, nil
}

// disposition is the Content-Disposition: an attachment with ?download=1,
// else inline, with the file's name when known.
func disposition(r *http.Request, name string) string {
	kind := "inline"
	if d := r.URL.Query().Get("download"); d == "1" || d == "true" {
		kind = "attachment"
	}
	if name == "" || name == "/" || name == "." {
		if kind == "inline" {
			return ""
		}
		return kind
	}
	return mime.FormatMediaType(kind, map[string]string{"filename": name})
}

// guardedFile is the io.ReadSeeker http.ServeContent reads. It records
// the first read error, which ServeContent drops, and keeps the reader
// that a multipart response runs in a goroutine apart from Close.
type guardedFile struct {
	mu  sync.Mutex
	f   *pieces.File
	err error
}

func (g *guardedFile) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, err := g.f.Read(p)
	if err != nil && g.err == nil {
		g.err = err
	}
	return n, err
}

func (g *guardedFile) Seek(off int64, whence int) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.f.Seek(off, whence)
}

func (g *guardedFile) failure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

func (g *guardedFile) close(rd *node.Reader) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rd.Close()
}

// deferredWriter holds the status back until the body's first bytes, so
// that a failure to fetch them can still be answered with its own status.
type deferredWriter struct {
	http.ResponseWriter
	status int
	sent   bool
}

func (w *deferredWriter) WriteHeader(code int) {
	if code < 200 { // 1xx: informational, not the answer
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.status == 0 {
		w.status = code
	}
}

func (w *deferredWriter) Write(b []byte) (int, error) {
	w.flush()
	return w.ResponseWriter.Write(b)
}

// flush sends the status held back.
func (w *deferredWriter) flush() {
	if w.sent {
		return
	}
	w.sent = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.ResponseWriter.WriteHeader(w.status)
}
