package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/pieces"
)

// filePath serves GET|HEAD /ddc/file/<cid>/<path>: the entry the path
// names in the directory cid, a file or a listing.
func (s *Server) filePath(w http.ResponseWriter, r *http.Request) {
	in, ok := s.guestIn(w, r, "")
	if !ok {
		return
	}
	s.servePath(w, r, in)
}

// bucketFilePath serves GET|HEAD /ddc/buc/<bucket>/file/<cid>/<path>.
func (s *Server) bucketFilePath(w http.ResponseWriter, r *http.Request) {
	in, ok := s.guestIn(w, r, r.PathValue("bucket"))
	if !ok {
		return
	}
	s.servePath(w, r, in)
}

func (s *Server) servePath(w http.ResponseWriter, r *http.Request, in *node.In) {
	root, err := pieces.ParseCID(r.PathValue("cid"))
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.serveEntry(w, r, root, r.PathValue("path"), in, immutable)
}

// serveEntry resolves p under root, through the access rule of a read in
// in, and serves a file as serveFile does or lists a directory, as HTML
// or, for Accept: application/json or ?format=json, as JSON.
//
// cache is the caching of the answer: immutable under a CID, short under
// a name, which a new version may move.
func (s *Server) serveEntry(w http.ResponseWriter, r *http.Request, root cid.Cid, p string, in *node.In, cache string) {
	what := root.String() + "/" + p
	ctx, stop := s.retrieval(r.Context())
	l, _, err := s.n.ResolveIn(ctx, root, p, in)
	if err != nil {
		stop()
		if errors.Is(err, pieces.ErrNoEntry) || errors.Is(err, pieces.ErrNotDir) {
			caching(w.Header(), in, cache)
			fail(w, http.StatusNotFound, fmt.Sprintf("%s: no such file or folder", what))
			return
		}
		s.failErr(w, ctx, err, what)
		return
	}
	var entries []pieces.Link
	err = s.n.EntriesIn(ctx, l.CID, in, func(e pieces.Link) error {
		if len(entries) >= maxListing {
			return errListingFull
		}
		entries = append(entries, e)
		return nil
	})
	stop()
	switch {
	case errors.Is(err, pieces.ErrNotDir):
		s.serveFile(w, r, l.CID, in, path.Base("/"+p), cache)
		return
	case err != nil && !errors.Is(err, errListingFull):
		s.failErr(w, ctx, err, what)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/") { // relative links need the folder's slash
		to := (&url.URL{Path: r.URL.Path + "/", RawQuery: r.URL.RawQuery}).String()
		http.Redirect(w, r, to, http.StatusMovedPermanently)
		return
	}
	h := w.Header()
	h.Set("Etag", `"`+l.CID.String()+`.dir"`)
	caching(h, in, cache)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", sandbox)
	h.Add("Vary", "Accept")
	if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		out := api.Listing{CID: l.CID.String(), Dir: true, Entries: make([]api.Entry, len(entries))}
		for i, e := range entries {
			out.Entries[i] = api.EntryOf(e)
			out.Size += e.Size
		}
		h.Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	rows := make([]listingRow, len(entries))
	for i, e := range entries {
		en := api.EntryOf(e)
		name := en.Name
		if en.Dir {
			name += "/"
		}
		rows[i] = listingRow{Href: (&url.URL{Path: name}).String() + queryOf(r), Name: name, Size: api.HumanSize(en.Size), CID: en.CID}
	}
	listingPage.Execute(w, listingData{Path: "/" + strings.TrimSuffix(p, "/"), CID: l.CID.String(), Rows: rows, Truncated: errors.Is(err, errListingFull)})
}

// maxListing bounds the entries one listing shows; a larger directory
// is still served, cut, and every entry still resolves by its path.
const maxListing = 10_000

var errListingFull = errors.New("listing full")

// queryOf keeps a grant (?token=) on the links of a listing.
func queryOf(r *http.Request) string {
	if t := r.URL.Query().Get("token"); t != "" {
		return "?" + url.Values{"token": {t}}.Encode()
	}
	return ""
}

type listingRow struct{ Href, Name, Size, CID string }

type listingData struct {
	Path, CID string
	Rows      []listingRow
	Truncated bool
}

var listingPage = template.Must(template.New("listing").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Path}}</title></head>
<body><h1>{{.Path}}</h1><p><code>{{.CID}}</code></p>
<table><tr><th>name</th><th>size</th><th>cid</th></tr>
{{range .Rows}}<tr><td><a href="{{.Href}}">{{.Name}}</a></td><td>{{.Size}}</td><td><code>{{.CID}}</code></td></tr>
{{end}}</table>{{if .Truncated}}<p>… the listing stops here; every entry still resolves by its path.</p>{{end}}
</body></html>
`))
