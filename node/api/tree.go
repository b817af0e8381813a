package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/tartree"
)

// Entry is a directory entry as the API lists it.
type Entry struct {
	Name string `json:"name"`
	CID  string `json:"cid"`
	Size uint64 `json:"size"`
	Dir  bool   `json:"dir,omitempty"`
	Mode string `json:"mode,omitempty"`
}

// EntryOf is the API's form of a directory link.
func EntryOf(l pieces.Link) Entry {
	e := Entry{Name: l.Name, CID: l.CID.String(), Size: l.Size}
	if v, ok := pieces.EntryTag(l, pieces.TagEntryType); ok && string(v) == pieces.EntryTypeDir {
		e.Dir = true
	}
	if v, ok := pieces.EntryTag(l, tartree.TagMode); ok {
		e.Mode = string(v)
	}
	return e
}

// Listing is GET /dir's reply: what path resolved to and, for a
// directory, its entries.
type Listing struct {
	CID     string  `json:"cid"`
	Dir     bool    `json:"dir"`
	Size    uint64  `json:"size"`
	Pieces  int     `json:"pieces_read"` // pieces the path's resolution read
	Entries []Entry `json:"entries,omitempty"`
}

// TreeResult is what a put of a tree returns.
type TreeResult struct {
	CID    string `json:"cid"`
	Size   uint64 `json:"size"`
	Files  int    `json:"files"`
	Dirs   int    `json:"dirs"`
	Pieces int    `json:"pieces"`
}

// putTree stores the tar stream in the body as a tree.
func (s *Server) putTree(w http.ResponseWriter, r *http.Request) {
	opt, in, ok := s.putRequest(w, r)
	if !ok {
		return
	}
	res, err := s.n.PutTreeIn(r.Context(), r.Body, opt, in)
	if err != nil {
		s.fail(w, fmt.Errorf("put -r: %w", err))
		return
	}
	s.reply(w, TreeResult{CID: res.Root.String(), Size: res.Size, Files: res.Files, Dirs: res.Dirs, Pieces: res.Pieces})
}

// tree streams the directory {cid} as tar; errors after the header go in
// the X-Ddc-Error trailer, and a body without X-Ddc-Done was cut short.
func (s *Server) tree(w http.ResponseWriter, r *http.Request) {
	c, err := pathCID(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	pin := r.URL.Query().Get("pin") == "true"
	if pin && r.Method != http.MethodPost {
		s.fail(w, usagef("pin=true changes the node's state: send it with POST"))
		return
	}
	in, err := requestIn(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-tar")
	h.Set("Trailer", "X-Ddc-Error, X-Ddc-Error-Code, X-Ddc-Done")
	hw := &headerWriter{w: w}
	if _, err := s.n.WriteTreeIn(r.Context(), c, in, hw, pin); err != nil {
		if !hw.wrote {
			s.fail(w, err)
			return
		}
		code, _ := classify(err)
		h.Set("X-Ddc-Error", err.Error())
		h.Set("X-Ddc-Error-Code", code)
		return
	}
	hw.Write(nil) // an empty tree still sends its header
	h.Set("X-Ddc-Done", "true")
}

// headerWriter sends the 200 header with the first bytes, so an error
// before any can still be a plain error reply.
type headerWriter struct {
	w     http.ResponseWriter
	wrote bool
}

func (h *headerWriter) Write(b []byte) (int, error) {
	if !h.wrote {
		h.wrote = true
		h.w.WriteHeader(http.StatusOK)
	}
	return h.w.Write(b)
}

// dir resolves ?path= under {cid} and lists it when it is a directory.
func (s *Server) dir(w http.ResponseWriter, r *http.Request) {
	c, err := pathCID(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	in, err := requestIn(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	l, read, err := s.n.ResolveIn(r.Context(), c, r.URL.Query().Get("path"), in)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := Listing{CID: l.CID.String(), Size: l.Size, Pieces: read, Entries: []Entry{}}
	var size uint64
	err = s.n.EntriesIn(r.Context(), l.CID, in, func(e pieces.Link) error {
		out.Entries = append(out.Entries, EntryOf(e))
		size += e.Size
		return nil
	})
	switch {
	case errors.Is(err, pieces.ErrNotDir):
		out.Entries = nil
	case err != nil:
		s.fail(w, err)
		return
	default:
		out.Dir, out.Size = true, size
	}
	s.reply(w, out)
}

// ComposeRequest is POST /compose's body.
type ComposeRequest struct {
	Ranges []ComposeRange `json:"ranges"`
}

// ComposeRange is a range of a file to compose from.
type ComposeRange struct {
	CID    string `json:"cid"`
	Offset uint64 `json:"offset"`
	Size   uint64 `json:"size"`
}

// compose stores a file made of ranges of others.
func (s *Server) compose(w http.ResponseWriter, r *http.Request) {
	opt, in, ok := s.putRequest(w, r)
	if !ok {
		return
	}
	var req ComposeRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&req); err != nil {
		s.fail(w, usagef("compose: bad request body: %v", err))
		return
	}
	ranges := make([]pieces.Range, len(req.Ranges))
	for i, rg := range req.Ranges {
		c, err := pieces.ParseCID(rg.CID)
		if err != nil {
			s.fail(w, usagef("compose: range %d: %v", i, err))
			return
		}
		ranges[i] = pieces.Range{CID: c, Offset: rg.Offset, Size: rg.Size}
	}
	res, err := s.n.ComposeIn(r.Context(), ranges, opt, in)
	if err != nil {
		s.fail(w, fmt.Errorf("compose: %w", err))
		return
	}
	s.reply(w, PutResult{CID: res.Root.String(), Size: res.Size, Pieces: res.Pieces})
}

// PutTree streams a tar of a tree (see tartree) to the node.
func (c *Client) PutTree(ctx context.Context, body io.Reader, opt pieces.BuildOptions) (TreeResult, error) {
	resp, err := c.do(ctx, http.MethodPost, "/put/tree", EncodePutOptions(opt), body, -1)
	if err != nil {
		return TreeResult{}, err
	}
	defer resp.Body.Close()
	var res TreeResult
	return res, json.NewDecoder(resp.Body).Decode(&res)
}

// Tree asks for the directory k as a tar stream, which fn reads; with
// pin, the node pins it once sent whole. An error the node met while
// sending is returned after fn.
func (c *Client) Tree(ctx context.Context, k cid.Cid, pin bool, fn func(io.Reader) error) error {
	method, q := http.MethodGet, url.Values{}
	if pin {
		method = http.MethodPost
		q.Set("pin", "true")
	}
	resp, err := c.do(ctx, method, "/tree/"+k.String(), q, nil, -1)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	ferr := fn(resp.Body)
	io.Copy(io.Discard, resp.Body) // the trailers come after the body
	if msg := resp.Trailer.Get("X-Ddc-Error"); msg != "" {
		return &Error{Code: resp.Trailer.Get("X-Ddc-Error-Code"), Message: msg}
	}
	if ferr != nil {
		return ferr
	}
	if resp.Trailer.Get("X-Ddc-Done") != "true" {
		return fmt.Errorf("node API tree %s: the stream was cut short", k)
	}
	return nil
}

// Dir resolves path under k and lists it when it is a directory.
func (c *Client) Dir(ctx context.Context, k cid.Cid, path string) (Listing, error) {
	var l Listing
	return l, c.getJSON(ctx, "/dir/"+k.String(), url.Values{"path": {path}}, &l)
}

// Compose has the node store a file made of ranges of others.
func (c *Client) Compose(ctx context.Context, ranges []pieces.Range, opt pieces.BuildOptions) (PutResult, error) {
	req := ComposeRequest{Ranges: make([]ComposeRange, len(ranges))}
	for i, r := range ranges {
		req.Ranges[i] = ComposeRange{CID: r.CID.String(), Offset: r.Offset, Size: r.Size}
	}
	b, err := json.Marshal(req)
	if err != nil {
		return PutResult{}, err
	}
	resp, err := c.do(ctx, http.MethodPost, "/compose", EncodePutOptions(opt), bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return PutResult{}, err
	}
	defer resp.Body.Close()
	var res PutResult
	return res, json.NewDecoder(resp.Body).Decode(&res)
}
