package gateway

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
)

// wholeCAR reports whether r asks for the plainest trustless CAR: the
// whole DAG under a root (no path, dag-scope=all, no entity-bytes), CARv1,
// depth-first or any order, without duplicates, by ?format=car or by an
// Accept of that one type. ddc writes that one itself (car.WriteDAG) at
// 2.7× boxo's rate on a 1 GiB UnixFS file (boxo's walk hashes every block
// again and reads it with a growing buffer); anything else is boxo's,
// which answers every combination the spec allows.
func wholeCAR(r *http.Request) bool {
	q := r.URL.Query()
	if strings.Trim(r.PathValue("path"), "/") != "" || q.Has("entity-bytes") || q.Has("filename") {
		return false
	}
	for k, ok := range map[string][]string{
		"dag-scope": {"", "all"}, "car-dups": {"", "n"}, "car-order": {"", "dfs", "unk"}, "car-version": {"", "1"},
	} {
		v := q.Get(k)
		if !contains(ok, v) {
			return false
		}
	}
	accept := strings.TrimSpace(r.Header.Get("Accept"))
	switch q.Get("format") {
	case "car":
		return accept == "" || !strings.Contains(accept, "vnd.ipld")
	case "":
	default:
		return false
	}
	if strings.Contains(accept, ",") {
		return false
	}
	mt, params, err := mime.ParseMediaType(accept)
	if err != nil || mt != mediaCAR {
		return false
	}
	for k, v := range params {
		switch {
		case k == "version" && v == "1", k == "order" && (v == "dfs" || v == "unk"), k == "dups" && v == "n":
		default:
			return false
		}
	}
	return true
}

func contains(set []string, v string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// serveWholeCAR answers a wholeCAR request for root (as asked: a CIDv0
// stays one) with a CARv1 of its DAG read through g, with the headers the
// spec and boxo write. It writes through dw, so a block refused or
// missing in the first 64 KiB is answered with its own status, and one
// after them aborts the connection: the client sees the CAR is cut short.
func (s *Server) serveWholeCAR(dw *dagWriter, r *http.Request, ctx context.Context, root cid.Cid, g pieces.Getter) {
	h := dw.Header()
	etag := fmt.Sprintf(`"%s.car.dfs.n.all"`, root)
	h.Set("Etag", etag)
	h.Set("X-Ipfs-Path", "/ipfs/"+root.String())
	h.Set("X-Ipfs-Roots", root.String())
	h.Set("Vary", "Accept")
	h.Set("Cache-Control", "public, "+immutable) // dw makes it private, no-store for a grant's read
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		dw.WriteHeader(http.StatusNotModified)
		dw.send()
		return
	}
	h.Set("Content-Type", car.ContentType)
	h.Set("Content-Disposition", attachment(r, root.String()+".car"))
	h.Set("Accept-Ranges", "none")
	dw.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		dw.send()
		return
	}
	err := car.WriteDAG(ctx, dw, g, root)
	switch {
	case err == nil:
		dw.send()
	case !dw.sent:
		dw.refuse(err)
	default:
		s.log.Warn("car response cut short", "cid", root, "err", err)
		panic(http.ErrAbortHandler)
	}
}
